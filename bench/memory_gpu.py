"""The step-peak estimate against ``torch.cuda.max_memory_allocated`` on a GPU machine.

Run it where CUDA GPUs are present (it refuses clearly elsewhere)::

    python -m torch.distributed.run --nproc_per_node=<GPUs> bench/memory_gpu.py [--layers 8]

For every configuration the planner offers in bf16 (ZeRO 0-3 x offload none/optimizer, and
optimizer+params with ZeRO-3) it builds a Llama-shaped model from a config
(Llama-2 7B's widths, fewer layers so that ZeRO-0 fits one GPU; random weights, nothing is
downloaded), trains two full steps with the DeepSpeed config ``abcitrain plan`` would write
(DeepSpeed's fused Adam, overlap_comm, the planner's bucket sizes), and reports per phase
the most bytes the CUDA caching allocator handed out (``max_memory_allocated``, reset
before each phase) beside ``abcitrain.memory.peak``'s device figure without its fixed
allowance (the allowance is for what the allocator does not count: the CUDA context, NCCL,
fragmentation). Rank 0 prints one table line per case and a JSON line; the ratio
estimate/measured is the figure to record (README: Training memory). Not run in CI: this
machine has no GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LLAMA2_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32,
             "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096,
             "tie_word_embeddings": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--micro-batch", type=int, default=2)
    args = parser.parse_args()

    import torch
    if not torch.cuda.is_available():
        sys.exit("bench/memory_gpu.py needs CUDA GPUs: none here (the CPU comparison is "
                 "tests/test_peak_memory.py)")
    import deepspeed
    from transformers import LlamaConfig, LlamaForCausalLM

    from abcitrain.memory.peak import step_peak
    from abcitrain.memory.shapes import ModelShape
    from abcitrain.memory.states import TrainingSetup
    from abcitrain.train.planner import OFFLOAD_ORDER, communication

    deepspeed.init_distributed()
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    shape = ModelShape("bench", params=0, layers=args.layers, hidden=4096, heads=32,
                       kv_heads=32, intermediate=11008, vocab=32000)
    shape = ModelShape(**{**shape.__dict__, "params": shape.architecture_params() or 0})
    comm = communication(shape, on_gpu=True)
    for stage in (0, 1, 2, 3):
        for offload in OFFLOAD_ORDER:
            if (offload != "none" and not stage) or (offload == "optimizer+params" and
                                                      stage != 3):
                continue
            setup = TrainingSetup(precision="bf16", zero_stage=stage, offload=offload,
                                  gpus_per_node=world, seq_len=args.seq_len,
                                  micro_batch=args.micro_batch, checkpointing=True,
                                  flash_attention=True, buffer_bytes=0, engine=True)
            estimated = {p.name: p.device_bytes for p in step_peak(shape, setup, comm).phases}
            measured = _measure(deepspeed, torch, LlamaConfig, LlamaForCausalLM, args,
                                stage, offload, comm.zero_config(stage), world)
            if rank == 0:
                est, got = max(estimated.values()), max(measured.values())
                print(f"ZeRO-{stage} offload {offload:16s} measured {got / 1e9:7.2f} GB "
                      f"({max(measured, key=measured.__getitem__)}), estimated "
                      f"{est / 1e9:7.2f} GB ({max(estimated, key=estimated.__getitem__)}), "
                      f"ratio {est / got:.3f}", flush=True)
                print("MEMORY_GPU " + json.dumps({
                    "stage": stage, "offload": offload, "params": shape.params,
                    "world": world, "measured": measured, "estimated": estimated}), flush=True)


def _measure(deepspeed, torch, config_cls, model_cls, args, stage: int,  # type: ignore[no-untyped-def]
             offload: str, zero_keys: dict[str, object], world: int) -> dict[str, int]:
    """Peak allocated bytes per phase over two steps of one configuration."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = model_cls(config_cls(**LLAMA2_7B, num_hidden_layers=args.layers)).to(torch.bfloat16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    zero: dict[str, object] = {"stage": stage, "contiguous_gradients": True, **zero_keys}
    if offload != "none":
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if offload == "optimizer+params":
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    config = {"train_micro_batch_size_per_gpu": args.micro_batch,
              "gradient_accumulation_steps": 1,
              "train_batch_size": args.micro_batch * world, "steps_per_print": 10**9,
              "gradient_clipping": 1.0, "bf16": {"enabled": True}, "zero_optimization": zero,
              "optimizer": {"type": "AdamW", "params": {"lr": 1e-5}}}
    engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(),
                                      config=config)
    del model
    tokens = torch.randint(0, LLAMA2_7B["vocab_size"], (args.micro_batch, args.seq_len),
                           device="cuda")
    peaks: dict[str, int] = {}

    def start() -> None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def stop(name: str) -> None:
        torch.cuda.synchronize()
        peaks[name] = max(peaks.get(name, 0), torch.cuda.max_memory_allocated())

    for _ in range(2):
        start()
        loss = engine(input_ids=tokens, labels=tokens).loss
        stop("forward")
        start()
        engine.backward(loss)
        stop("backward")
        del loss
        start()
        engine.step()
        stop("optimizer step")
    engine.destroy()
    torch.cuda.empty_cache()
    return peaks


if __name__ == "__main__":
    main()
