"""Run under torchrun (2 ranks, gloo): the PEAK bytes of live tensors while a DeepSpeed engine
trains, every allocation counted.

torch's profiler (``profile_memory=True``) records every allocation and free of the CPU
allocator with the running total it reports (the CPU counterpart of
``torch.cuda.max_memory_allocated``): the largest total after the model is built, less the
total before, is the peak. Marks between the phases (forward, backward, optimizer step) say
which phase reached it. Two full steps run (optimizer states are created at the first) and
both count. The DeepSpeed config is the one ``abcitrain plan`` writes for a run without a
GPU: the communication settings come from ``abcitrain.train.planner.communication`` and
torch's AdamW steps (``torch_adam``), so the estimate is judged on the values it reads.

What it does not see: memory not allocated through torch's CPU allocator (gloo's own
buffers, Python objects). Prints one JSON line per case from EVERY rank. Not a test module
itself: tests/test_peak_memory.py runs it.
"""

import gc
import itertools
import json
import os
import sys
import time

import deepspeed
import torch
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile
from transformers import LlamaConfig, LlamaForCausalLM

from abcitrain.models.shapes import ModelShape
from abcitrain.train.planner import communication

SHAPE = {"hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 8,
         "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 8192,
         "max_position_embeddings": 512, "tie_word_embeddings": False}
SEQ, MICRO = 128, 2
PROBE = ModelShape("probe", params=0, layers=8, hidden=512, heads=8, kv_heads=8,
                   intermediate=1408, vocab=8192)


def _walk(nodes):  # type: ignore[no-untyped-def]
    for node in nodes:
        yield node
        yield from _walk(node.children)


def measure(stage: int, precision: str, offload: bool) -> dict[str, object]:
    gc.collect()
    marks: list[tuple[str, int]] = []
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        marks.append(("build", time.time_ns()))
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**SHAPE))
        if precision == "bf16":
            model = model.to(torch.bfloat16)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        params = sum(p.numel() for p in model.parameters())
        zero = {"stage": stage, "contiguous_gradients": True,
                **communication(PROBE, on_gpu=False).zero_config(stage)}
        if offload:
            zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False}
        config = {"train_micro_batch_size_per_gpu": MICRO, "gradient_accumulation_steps": 1,
                  "train_batch_size": 2 * MICRO, "steps_per_print": 10**9,
                  "gradient_clipping": 1.0, "zero_optimization": zero,
                  "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}}}
        if offload:
            config["zero_force_ds_cpu_optimizer"] = False
        if precision == "bf16":
            config["bf16"] = {"enabled": True}
        engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(),
                                          config=config)
        del model
        tokens = torch.randint(0, SHAPE["vocab_size"], (MICRO, SEQ))
        for _ in range(2):
            marks.append(("forward", time.time_ns()))
            loss = engine(input_ids=tokens, labels=tokens).loss
            marks.append(("backward", time.time_ns()))
            engine.backward(loss)
            del loss
            marks.append(("optimizer step", time.time_ns()))
            engine.step()
        marks.append(("end", time.time_ns()))
    allocs = sorted((n for n in _walk(prof.profiler.kineto_results.experimental_event_tree())
                     if n.tag == _EventType.Allocation and str(n.extra_fields.device) == "cpu"),
                    key=lambda n: n.start_time_ns)
    base = allocs[0].extra_fields.total_allocated - allocs[0].extra_fields.alloc_size
    peaks: dict[str, int] = {}
    for (name, start), (_, stop) in itertools.pairwise(marks):
        totals = [n.extra_fields.total_allocated - base for n in allocs
                  if start <= n.start_time_ns < stop]
        if totals and name != "build":
            peaks[name] = max(peaks.get(name, 0), max(totals))
    engine.destroy()
    return {"stage": stage, "precision": precision, "offload": offload, "params": params,
            "peaks": peaks, "rank": int(os.environ["RANK"])}


def main() -> None:
    deepspeed.init_distributed(dist_backend="gloo")
    for case in sys.argv[1:]:
        stage, precision, offload = case.split(":")
        # one write(2) per line, under PIPE_BUF: the two ranks share the pipe, and print()
        # writes the text and its newline separately (their lines were seen interleaved)
        line = "PEAK " + json.dumps(measure(int(stage), precision, offload == "optimizer"))
        os.write(1, (line + "\n").encode())
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
