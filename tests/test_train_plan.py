"""``abcitrain plan`` and training specs: which configuration fits, the DeepSpeed config it
writes, what is refused and how. Nothing here imports torch."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, cli
from harness.jsonschemas import validate

LLAMA7B = {"name": "sft-7b", "cluster": "abci3", "resource": "rt_HF", "group": "gaa50000",
           "walltime": "12:00:00", "nodes": "auto",
           "train": {"mode": "sft", "model": "llama2-7b", "data": "data/sft.jsonl",
                     "seq_len": 4096, "global_batch": 128, "steps": 1000}}


def _write(tmp_path: Path, data: dict[str, Any], name: str = "job.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _plan(spec: str, *args: str, ok: bool | None = True) -> Any:
    return cli("plan", "--json", *args, spec, ok=ok)


def test_llama2_7b_with_zero2_fits_one_rt_hf_node(tmp_path: Path) -> None:
    spec = _write(tmp_path, {**LLAMA7B, "train": {**LLAMA7B["train"], "zero": 2}})
    out = json.loads(_plan(spec, "--dry-run").output)
    chosen = out["chosen"]
    assert out["precision"] == "bf16" and out["params"] == 6_738_415_616
    assert (chosen["nodes"], chosen["zero"], chosen["offload"]) == (1, 2, "none")
    # 2 bytes of bf16 weights + (2 grads + 12 optimizer) / 8 GPUs = 3.75 bytes per parameter
    assert round(chosen["model_states_gb"], 2) == round(3.75 * 6_738_415_616 / 1e9, 2) == 25.27
    assert chosen["peak_gb"] <= out["usable_gb_per_rank"] == 141 * 0.9
    assert out["points_per_hour"] == "7.50"     # one rt_HF node, on-demand
    assert 128 % (8 * chosen["micro_batch"]) == 0
    assert chosen["micro_batch"] * chosen["grad_accum"] * 8 == 128


def test_the_cheapest_fit_has_the_fewest_nodes_then_no_offload(tmp_path: Path) -> None:
    # Llama-2 70B in bf16 on rt_HF: model states alone are 1,120 GB, so one node of 8 x 141 GB
    # is too small for stage 0-2; ZeRO-3 over enough GPUs (or with offload) is the plan.
    spec = _write(tmp_path, {**LLAMA7B, "train": {**LLAMA7B["train"], "model": "llama2-70b",
                                                  "global_batch": 64, "micro_batch": 1}})
    out = json.loads(_plan(spec, "--dry-run", "--all").output)
    chosen = out["chosen"]
    assert chosen["zero"] == 3
    cheaper = [t for t in out["tried"] if t["nodes"] < chosen["nodes"]]
    assert all(not t["fits"] for t in cheaper)
    same = [t for t in out["tried"] if t["nodes"] == chosen["nodes"] and t["fits"]]
    order = ["none", "optimizer", "optimizer+params"]
    assert min(order.index(t["offload"]) for t in same) == order.index(chosen["offload"])
    # One node holds it with the optimizer in its 1,920 GB of host memory (16 bytes/param
    # with the fp32 gradients): cheaper per hour than two, and the plan says what two cost.
    assert (chosen["nodes"], chosen["offload"]) == (1, "optimizer")
    assert chosen["host_gb_per_node"] == 16 * 68_976_648_192 / 1e9 <= 1920 * 0.9
    assert any("without offload it fits on 2 nodes, ZeRO-3" in n and
               "15.00 points per hour" in n for n in out["notes"])


def test_offload_the_node_cannot_hold_is_refused(tmp_path: Path) -> None:
    # Llama-2 13B on one H200 (rt_HG, 160 GB of host memory): offloading the optimizer
    # makes the GPU side fit, but the CPU side needs 16 x 13.0e9 = 208 GB.
    spec = _write(tmp_path, {**LLAMA7B, "resource": "rt_HG", "train": {
        **LLAMA7B["train"], "model": "llama2-13b", "global_batch": 64, "micro_batch": 1}})
    result = _plan(spec, "--dry-run", "--all", ok=False)
    assert result.exit_code == 2
    out = json.loads(result.stdout)                 # one document, refusal included
    validate("plan", out)
    assert out["ok"] is False and out["errors"]
    offloaded = [t for t in out["tried"] if t["offload"] != "none"]
    assert offloaded and all(t["fits_gpu"] and not t["fits_host"] for t in offloaded)
    assert out["chosen"] is None
    # Llama-2 13B's architecture count (13,015,864,320 from its config's shapes): the least
    # host memory is ZeRO-3's, 16 bytes/param (DeepSpeed's stage3.py on one GPU: the fp32
    # master copy 4, Adam's two states 8, the persistent fp32 gradient partition 4);
    # ZeRO 1-2 also keep a 16-bit parameter buffer (2 bytes/param) and a gradient buffer of
    # the largest tensor, the 32000 x 5120 embedding, in bf16 (stage_1_and_2.py's
    # param_buffer_of_bit16_for_cpu_offload_groups and temp_grad_buffer_for_cpu_offload).
    # Usable: rt_HG's 160 GB less the 10% margin.
    p = 13_015_864_320
    assert (f"ZeRO-3 with offload optimizer fits the GPUs but puts {16 * p / 1e9:.1f} GB in "
            f"each node's CPU memory, over the {160 * 0.9:.1f} GB usable") in result.output
    zero1 = [t for t in offloaded if t["zero"] == 1]
    assert zero1 and all(t["host_gb_per_node"] == (18 * p + 2 * 32000 * 5120) / 1e9
                         for t in zero1)


def test_nothing_fits_lists_why_and_exits_2(tmp_path: Path) -> None:
    spec = _write(tmp_path, {**LLAMA7B, "nodes": 1, "train": {
        **LLAMA7B["train"], "model": "llama2-70b", "zero": 0, "offload": "none"}})
    result = _plan(spec, "--dry-run", ok=False)
    assert result.exit_code == 2
    assert "no configuration fits rt_HF on abci3" in result.output
    assert "1 node: the smallest configuration (ZeRO-0" in result.output
    assert "over the 126.9 GB usable (141.0 GB less 10% margin)" in result.output


def test_plan_writes_the_deepspeed_config_the_job_uses(tmp_path: Path) -> None:
    spec = _write(tmp_path, {**LLAMA7B, "train": {**LLAMA7B["train"], "zero": 3,
                                                  "offload": "optimizer", "lr": 1e-5}})
    cli("plan", spec)
    ds = json.loads((tmp_path / "runs" / "sft-7b" / "ds_config.json").read_text())
    assert ds["train_batch_size"] == 128
    assert ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"] * 8 == 128
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert ds["bf16"] == {"enabled": True} and "fp16" not in ds
    assert ds["optimizer"]["params"]["lr"] == 1e-5
    assert ds["optimizer"]["params"]["torch_adam"] is False        # FusedAdam on GPUs
    plan = json.loads((tmp_path / "runs" / "sft-7b" / "train.json").read_text())
    assert plan["train"]["zero"] == 3 and plan["train"]["precision"] == "bf16"


def test_v100_trains_in_fp16(tmp_path: Path) -> None:
    spec = _write(tmp_path, {"name": "v", "cluster": "abci2", "resource": "rt_F",
                             "group": "gaa50000", "walltime": "1:00:00", "train": {
                                 "mode": "cpt", "model": "llama2-7b", "data": "d",
                                 "seq_len": 2048, "global_batch": 32, "steps": 10}})
    out = json.loads(_plan(spec, "--dry-run").output)
    assert out["precision"] == "fp16"


def test_every_train_problem_is_listed_at_once(tmp_path: Path) -> None:
    spec = _write(tmp_path, {"name": "bad", "cluster": "local", "resource": "cpu",
                             "walltime": "1:00:00", "train": {
                                 "mode": "rlhf", "model": "m; rm -rf /", "seq_len": 2,
                                 "global_batch": 0, "zero": 4, "walltime": {"signal": "KILL"}}})
    result = cli("submit", spec, ok=False)
    assert result.exit_code == 2
    for needle in ("train.mode", "train.model", "train.data", "train.seq_len",
                   "train.global_batch", "train.steps", "train.zero", "train.walltime.signal"):
        assert needle in result.output, needle


def test_a_cpu_type_needs_a_rank_count(tmp_path: Path) -> None:
    spec = _write(tmp_path, {"name": "c", "cluster": "local", "resource": "cpu",
                             "walltime": "1:00:00", "train": {
                                 "mode": "cpt", "model": "llama2-7b", "data": "d",
                                 "seq_len": 64, "global_batch": 8, "steps": 1}})
    result = _plan(spec, "--dry-run", ok=False)
    assert result.exit_code == 2 and "has no GPUs: say how many ranks" in result.output


def test_auto_nodes_only_for_training_and_a_command_or_train_is_needed(tmp_path: Path) -> None:
    spec = _write(tmp_path, {"name": "x", "cluster": "local", "resource": "cpu",
                             "walltime": "1:00:00", "nodes": "auto"})
    result = cli("check", spec, ok=False)
    assert result.exit_code == 2
    assert "nodes: auto is for training jobs" in result.output
    assert "command: required" in result.output


def test_the_job_script_launches_the_kit(tmp_path: Path) -> None:
    (tmp_path / "jobs").symlink_to(ROOT / "jobs")
    spec = _write(tmp_path, {"name": "kit", "cluster": "local", "resource": "cpu",
                             "walltime": "0:20:00", "nodes": "auto", "train": {
                                 "mode": "sft", "model": "jobs/models/tiny-llama",
                                 "init": "random", "data": "jobs/data/sft.jsonl",
                                 "seq_len": 32, "global_batch": 4, "steps": 2,
                                 "ranks_per_node": 2,
                                 "walltime": {"stop_before": 90, "max_jobs": 3}}})
    out = cli("submit", "--dry-run", spec).output
    line = next(x for x in out.splitlines() if " -m abcitrain launch " in x)
    assert line.startswith(sys.executable)
    assert "--nproc-per-node 2 --signal USR2 --stop-before 90 --state runs/kit/state.json" in line
    assert f"--resubmit {tmp_path / 'job.yaml'} --max-jobs 3" in line
    assert line.endswith("-- python jobs/train.py runs/kit/train.json")
    assert "export ABCITRAIN_JOB_START ABCITRAIN_WALLTIME_S=1200" in out
    assert not (tmp_path / "runs").exists()          # a dry run writes nothing


def test_submitting_a_preset_name_is_refused_before_anything_runs(tmp_path: Path) -> None:
    spec = _write(tmp_path, {**LLAMA7B, "cluster": "local", "resource": "gpu-server",
                             "group": None})
    result = cli("submit", spec, ok=False)
    assert result.exit_code == 2 and "has no config.json here" in result.output
    assert not (tmp_path / ".abcitrain" / "scripts").exists()


def test_a_stop_signal_before_the_start_is_refused(tmp_path: Path) -> None:
    (tmp_path / "jobs").symlink_to(ROOT / "jobs")
    spec = _write(tmp_path, {"name": "k", "cluster": "local", "resource": "cpu",
                             "walltime": "0:05:00", "train": {
                                 "mode": "sft", "model": "jobs/models/tiny-llama",
                                 "data": "jobs/data/sft.jsonl", "seq_len": 32,
                                 "global_batch": 4, "steps": 2, "ranks_per_node": 2}})
    result = cli("submit", spec, ok=False)       # stop_before defaults to 5 minutes
    assert result.exit_code == 2
    assert "train.walltime.stop_before: 300 s is not shorter than the walltime" in result.output


def test_a_planned_node_count_reaches_the_pbs_script(tmp_path: Path) -> None:
    """PBS Pro cannot run here: the ABCI 3.0 script is checked as rendered text."""
    model = tmp_path / "models" / "llama2-70b"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({   # Llama-2 70B's shape (no weights)
        "hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64,
        "num_key_value_heads": 8, "intermediate_size": 28672, "vocab_size": 32000}))
    spec = _write(tmp_path, {**LLAMA7B, "walltime": "2:00:00", "train": {
        **LLAMA7B["train"], "model": "models/llama2-70b", "global_batch": 64,
        "micro_batch": 1, "offload": "none", "walltime": {"stop_before": 600}}})
    planned = json.loads(_plan(spec, "--dry-run").output)["chosen"]
    assert planned["nodes"] > 1 and planned["zero"] == 3
    out = cli("submit", "--dry-run", spec).output
    assert f"#PBS -l select={planned['nodes']}" in out
    assert "#PBS -P gaa50000" in out and "#PBS -q rt_HF" in out
    assert "--nproc-per-node 8 --signal USR2 --stop-before 600" in out


@pytest.mark.parametrize(("warmup", "total", "first"), [
    (0, 6, [1.0, 5 / 6, 4 / 6]), (2, 6, [0.5, 1.0, 1.0, 0.75]), (1, 3, [1.0, 1.0, 0.5])])
def test_no_optimizer_step_trains_at_lr_0(warmup: int, total: int, first: list[float]) -> None:
    """DeepSpeed's WarmupDecayLR made the first two steps of an un-warmed run train at lr 0;
    the kit's schedule (through torch's LambdaLR, as the trainer builds it) starts at once."""
    import torch

    from abcitrain.train.config import lr_factor

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda done: lr_factor(done, warmup, total))
    used = []
    for _ in range(total):
        used.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert used[:len(first)] == pytest.approx([0.1 * f for f in first])
    assert min(used) > 0


@pytest.mark.parametrize("model", ["llama2-7b", "mistral-7b", "llama3-8b"])
def test_zero_auto_plans_for_the_step_peak_with_room(tmp_path: Path, model: str) -> None:
    """ZeRO-0 looked like it fit a 7B model on rt_HF by its model states (16 bytes/param);
    its optimizer step holds 20 bytes/param (bf16 weights and gradients 2 + 2, the fp32
    master copy 4, Adam 8, the fp32 gradient copies DeepSpeed's FP16 optimizer makes, 4):
    over 126.9 GB for each of these. The chosen configuration peaks within the usable
    memory, and no fitting configuration of the same price and micro-batch has more room."""
    spec = _write(tmp_path, {**LLAMA7B, "train": {**LLAMA7B["train"], "model": model}})
    out = json.loads(_plan(spec, "--dry-run", "--all").output)
    chosen, usable = out["chosen"], out["usable_gb_per_rank"]
    params = out["params"]
    zero0 = [t for t in out["tried"] if t["zero"] == 0]
    assert zero0 and all(not t["fits"] for t in zero0)
    assert all(t["peak_gb"] >= 20 * params / 1e9 for t in zero0)
    smallest = min(zero0, key=lambda t: t["micro_batch"])
    assert smallest["micro_batch"] == 1 and smallest["peak_phase"] == "optimizer step"
    assert chosen["peak_gb"] <= usable and chosen["nodes"] == 1
    rivals = [t for t in out["tried"] if t["fits"] and t["offload"] == chosen["offload"]
              and t["micro_batch"] == chosen["micro_batch"] and t["nodes"] == 1]
    assert chosen["headroom_gb"] == max(t["headroom_gb"] for t in rivals)
    assert chosen["headroom_gb"] == pytest.approx(usable - chosen["peak_gb"])
