"""The ZeRO memory estimator: the headline figures exactly, the model shapes, DeepSpeed's own
formulas beside ours, and the `memory` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import cli

from abcitrain.errors import InputError
from abcitrain.memory.shapes import resolve
from abcitrain.memory.states import GB, TrainingSetup, deepspeed_estimate, estimate


def _states(model: str, **setup: object) -> float:
    return estimate(resolve(model), TrainingSetup(**setup)).model_states / GB  # type: ignore[arg-type]


def test_llama2_7b_fp32_adam_headline_figures() -> None:
    fp32 = {"precision": "fp32", "optimizer": "adam", "gpus_per_node": 8}
    assert _states("llama2-7b", zero_stage=0, **fp32) == 112.0
    assert _states("llama2-7b", zero_stage=1, **fp32) == 63.0
    assert _states("llama2-7b", zero_stage=2, **fp32) == 38.5


def test_mixed_precision_and_stage_3() -> None:
    # 2 + 2 + 12 bytes per parameter; stage 3 partitions the weights too (and gathers the
    # largest layer whole: the 32000 x 4096 embedding in 16 bits)
    assert _states("7e9", precision="bf16", optimizer="adam") == 7 * 16
    est = estimate(resolve("llama2-7b"), TrainingSetup(zero_stage=3, gpus_per_node=8))
    assert est.weights == 2 * 7 * GB // 8 + 2 * 32000 * 4096
    assert est.gradients == 2 * 7 * GB // 8 and est.optimizer == 12 * 7 * GB // 8
    sgd = estimate(resolve("7e9"), TrainingSetup(precision="fp32", optimizer="sgd"))
    assert sgd.model_states == 8 * 7 * GB


def test_offload_moves_optimizer_states_to_cpu() -> None:
    est = estimate(resolve("llama2-7b"), TrainingSetup(zero_stage=2, offload="optimizer",
                                                       gpus_per_node=8, nodes=2))
    assert est.optimizer == 0 and est.gradients == 0
    # this node's 8 shares of 16: optimizer states, and the gradients the CPU optimizer reads
    assert est.cpu_per_node == (12 + 2) * 7 * GB // 16 * 8
    engine = estimate(resolve("llama2-7b"), TrainingSetup(zero_stage=2, offload="optimizer",
                                                          gpus_per_node=8, nodes=2, engine=True))
    assert engine.cpu_per_node == (12 + 4) * 7 * GB // 16 * 8    # DeepSpeed: fp32 gradients
    with pytest.raises(ValueError, match="needs ZeRO stage 3"):
        estimate(resolve("llama2-7b"), TrainingSetup(zero_stage=2, offload="optimizer+params"))


def test_architecture_counts_and_config_json(tmp_path: Path) -> None:
    assert resolve("llama2-7b", exact=True).params == 6_738_415_616
    assert resolve("llama3-8b", exact=True).params == 8_030_261_248
    assert resolve("llama2-70b", exact=True).params == 68_976_648_192
    cfg = tmp_path / "tiny" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"hidden_size": 64, "num_hidden_layers": 2,
                               "num_attention_heads": 4, "num_key_value_heads": 2,
                               "intermediate_size": 128, "vocab_size": 1000,
                               "tie_word_embeddings": True}))
    tiny = resolve(str(cfg.parent))
    # embeddings 64000 (tied) + 2 x (q,o 2x4096 + k,v 2x64x32 + mlp 3x8192 + norms 128) + 64
    assert tiny.params == 64000 + 2 * (8192 + 4096 + 24576 + 128) + 64
    assert resolve("350M").params == 350_000_000
    with pytest.raises(InputError, match="not a preset"):
        resolve("gpt-nonesuch")


@pytest.mark.parametrize("preset", ["llama2-7b", "llama3-8b"])
def test_deepspeed_column_matches_the_installed_estimators_digit_for_digit(preset: str) -> None:
    """Every stage, offload and layout against DeepSpeed's own functions (imported here,
    deepspeed>=0.19: 2P + 18P/N for stages 1-2; stage 3 with zero_init, as the kit builds)."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    model = resolve(preset)
    largest = model.largest_layer_params()
    checked = 0
    for stage in (1, 2, 3):
        for offload in ("none", "optimizer", "optimizer+params"):
            if offload == "optimizer+params" and stage != 3:
                continue
            for nodes in (1, 2, 16):
                for per_node in (1, 8):
                    setup = TrainingSetup(zero_stage=stage, offload=offload, nodes=nodes,
                                          gpus_per_node=per_node)
                    got = deepspeed_estimate(model, setup)
                    if stage == 3:
                        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
                            model.params, largest, per_node, nodes, offload != "none",
                            offload == "optimizer+params", zero_init=True)
                    else:
                        cpu, gpu = estimate_zero2_model_states_mem_needs(
                            model.params, per_node, nodes, offload != "none")
                    assert got == (gpu, cpu), (stage, offload, nodes, per_node)
                    checked += 1
    assert checked == 7 * 6      # (stages 1-2 x 2 offloads + stage 3 x 3) x 6 layouts
    assert deepspeed_estimate(model, TrainingSetup(zero_stage=0)) is None
    # and the paper's stage-2 figure stays below DeepSpeed's: ZeRO partitions the gradients
    ours = estimate(model, TrainingSetup(zero_stage=2, gpus_per_node=8)).model_states
    assert ours == 2 * model.params + 14 * model.params // 8


def test_activations_grow_with_sequence_and_without_checkpointing() -> None:
    model = resolve("llama3-8b")
    ckpt = estimate(model, TrainingSetup(seq_len=4096)).activations
    full = estimate(model, TrainingSetup(seq_len=4096, checkpointing=False)).activations
    scores = estimate(model, TrainingSetup(seq_len=4096, checkpointing=False,
                                           flash_attention=False)).activations
    assert ckpt is not None and full is not None and scores is not None
    assert ckpt < full < scores
    # checkpointed: each of the 32 layers keeps its 16-bit input (2 s h bytes); one layer is
    # recomputed at a time and holds 34 s h bytes (Korthikanti et al. 2022, "Reducing
    # Activation Recomputation in Large Transformer Models", eq. 1: s b h (34 + 5 a s / h),
    # whose attention-score term flash attention removes); the loss over the 128,256-token
    # vocabulary holds the bf16 logits (2 s V), transformers' fp32 copy (ForCausalLMLoss:
    # logits.float(), 4 s V) and cross-entropy's fp32 log-softmax (4 s V), measured in
    # tests/test_peak_memory.py
    s, h = 4096, 4096
    assert ckpt == 32 * 2 * s * h + 34 * s * h + (2 + 4 + 4) * s * 128256
    assert estimate(resolve("7e9"), TrainingSetup()).activations is None


def test_memory_command_fits_on_a_cluster() -> None:
    out = cli("memory", "llama2-7b", "--precision", "fp32", "--optimizer", "adam",
              "--gpus-per-node", "8", "--json").output
    totals = {r["zero_stage"]: r["model_states_gb"] for r in json.loads(out)["stages"]}
    # stages 0-2: the guide's Llama-2 7B figures (../shared/DOMAIN.md: 112 / 63 / 38.5 GB,
    # 16 bytes per parameter, 7e9 parameters). Stage 3: the ZeRO paper's 16 x 7e9 / 8 = 14 GB,
    # plus OUR allowance for the largest layer gathered whole: the 32,000 x 4,096 embedding
    # in fp32 (4 bytes), 0.524 GB.
    zero3 = (16 * 7e9 / 8 + 4 * 32_000 * 4_096) / 1e9
    assert totals == {0: 112.0, 1: 63.0, 2: 38.5, 3: pytest.approx(zero3, abs=0.005)}
    fit = json.loads(cli("memory", "llama2-7b", "--cluster", "abci3", "--type", "rt_HF",
                         "--zero", "2", "--json").output)
    assert fit["gpu_memory_gb"] == 141 and fit["stages"][0]["fits"] is True
    # Llama-2 70B in bf16 with AdamW: no stage fits one 8 x 141 GB node (stage 3 needs
    # 146 GB per GPU); on two nodes stage 3 does
    big = json.loads(cli("memory", "llama2-70b", "--cluster", "abci3", "--type", "rt_HF",
                         "--json").output)
    assert [r["fits"] for r in big["stages"]] == [False, False, False, False]
    two = json.loads(cli("memory", "llama2-70b", "--cluster", "abci3", "--type", "rt_HF",
                         "--nodes", "2", "--zero", "3", "--json").output)
    assert two["stages"][0]["fits"] is True
    text = cli("memory", "llama2-7b", "--cluster", "abci3", "--type", "rt_HF").output
    assert "the architecture has 6,738,415,616" in text and "yes (141 GB)" in text
    # Offloading Llama-2 13B's optimizer from one H200 (rt_HG): the GPU side fits, but
    # 14 bytes/param (12 of states + 2 of gradients) = 182 GB exceed the node's 160 GB.
    off = json.loads(cli("memory", "llama2-13b", "--cluster", "abci3", "--type", "rt_HG",
                         "--zero", "2", "--offload", "optimizer", "--json").output)
    row = off["stages"][0]
    assert off["host_memory_gb"] == 160 and row["cpu_per_node_gb"] == 14 * 13
    assert (row["fits_gpu"], row["fits_host"], row["fits"]) == (True, False, False)
    assert "NO (CPU 160 GB)" in cli("memory", "llama2-13b", "--cluster", "abci3", "--type",
                                    "rt_HG", "--zero", "2", "--offload", "optimizer").output
    bad = cli("memory", "llama2-7b", "--cluster", "abci3", "--type", "rt_HC", ok=None)
    assert bad.exit_code == 2 and "declares no GPUs" in bad.output


def test_memory_command_reports_the_step_peak_and_its_phase() -> None:
    """ZeRO-0, bf16, AdamW on DeepSpeed's FP16 optimizer: at the optimizer step a GPU holds
    the bf16 weights and gradients (2 + 2 bytes/param), the fp32 master copy (4), Adam's two
    states (8) and the fp32 copies of the gradients the step reads (4): 20 bytes/param, plus
    the stated 2 GB allowance. 7e9 x 20 = 140 GB: over the 126.9 GB usable of an H200."""
    out = json.loads(cli("memory", "llama2-7b", "--cluster", "abci3", "--type", "rt_HF",
                         "--zero", "0", "--json").output)
    row = out["stages"][0]
    assert row["peak_phase"] == "optimizer step"
    assert row["peak_gb"] == pytest.approx(20 * 7 + 2)
    assert row["phases"]["optimizer step"]["terms"]["fp32 gradient copies"] == 4 * 7
    assert row["fits"] is False and row["model_states_gb"] == 16 * 7
    text = cli("memory", "llama2-7b", "--cluster", "abci3", "--type", "rt_HF").output
    assert "PEAK/GPU" in text and "optimizer step" in text
