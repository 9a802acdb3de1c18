"""Run under torchrun (2 ranks, gloo): the PEAK bytes of live tensors while a DeepSpeed engine
trains, every allocation counted.

torch's profiler (``profile_memory=True``) records every allocation and free of the CPU
allocator on the thread that runs the engine. The peak is rebuilt from those events: each
allocation counts from the moment it is made until its free, and the largest sum after the
model is built is the peak (the CPU counterpart of ``torch.cuda.max_memory_allocated``).
Marks between the phases (forward, backward, optimizer step) say which phase reached it. Two
full steps run (optimizer states are created at the first) and both count. The DeepSpeed
config is the one ``abcitrain plan`` writes for a run without a GPU: the communication
settings come from ``abcitrain.train.planner.communication`` and torch's AdamW steps
(``torch_adam``), so the estimate is judged on the values it reads.

Why rebuilt, not the profiler's running total. The profiler follows only the threads it
was started on. When gloo's worker thread drops the last reference to a tensor (a bucket
or a gathered parameter it communicated), that free is neither recorded nor subtracted
from the profiler's running total (``total_allocated``): the total stays too high, by a
different amount each run (measured: 0.4 to 1.4 bytes/param for ZeRO-2, 3.3 to 3.5 for
ZeRO-3 with this model), which was most of the "run-to-run variation" earlier versions of
this file reported. Such a free is still certain: the allocator hands the same address out
again later. So an allocation with no recorded free ends, at the latest, when its address
is allocated again; that is the time used here (the peak can only be overstated by it,
never understated). Counted this way, the peaks of the same case agree between runs and
ranks within about 0.6 bytes/param.

What it does not see: memory not allocated through torch's CPU allocator on the engine's
thread (gloo's own buffers and its worker threads' temporaries, Python objects). Prints one
JSON line per case from EVERY rank. Not a test module itself: tests/test_peak_memory.py
runs it.
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


def _running_total(events: list) -> list[tuple[int, int]]:  # type: ignore[type-arg]
    """(time, bytes live) after every allocation and free in ``events`` (time-ordered).

    A free the profiler did not record (made on another thread) is placed where the same
    address is allocated again: the latest moment it can have happened. Frees of blocks
    allocated before the profile began are not this profile's and are left out."""
    live: dict[int, int] = {}
    changes: list[tuple[int, int]] = []
    for node in events:
        fields = node.extra_fields
        if fields.alloc_size > 0:
            if fields.ptr in live:            # its earlier block was freed out of sight
                changes.append((node.start_time_ns, -live.pop(fields.ptr)))
            live[fields.ptr] = fields.alloc_size
            changes.append((node.start_time_ns, fields.alloc_size))
        elif fields.alloc_size < 0 and fields.ptr in live:
            changes.append((node.start_time_ns, -live.pop(fields.ptr)))
    totals, running = [], 0
    for when, delta in changes:
        running += delta
        totals.append((when, running))
    return totals


def measure(stage: int, precision: str, offload: str) -> dict[str, object]:
    gc.collect()
    marks: list[tuple[str, int]] = []
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        marks.append(("build", time.time_ns()))
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**SHAPE))
        if precision != "fp32":
            model = model.to(torch.bfloat16 if precision == "bf16" else torch.float16)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        params = sum(p.numel() for p in model.parameters())
        zero = {"stage": stage, "contiguous_gradients": True,
                **communication(PROBE, on_gpu=False).zero_config(stage)}
        if offload != "none":
            zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False}
        if offload == "optimizer+params":
            zero["offload_param"] = {"device": "cpu", "pin_memory": False}
        config = {"train_micro_batch_size_per_gpu": MICRO, "gradient_accumulation_steps": 1,
                  "train_batch_size": 2 * MICRO, "steps_per_print": 10**9,
                  "gradient_clipping": 1.0, "zero_optimization": zero,
                  "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}}}
        if offload != "none":
            config["zero_force_ds_cpu_optimizer"] = False
        if precision == "bf16":
            config["bf16"] = {"enabled": True}
        if precision == "fp16":
            config["fp16"] = {"enabled": True}
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
    events = sorted((n for n in _walk(prof.profiler.kineto_results.experimental_event_tree())
                     if n.tag == _EventType.Allocation and str(n.extra_fields.device) == "cpu"),
                    key=lambda n: n.start_time_ns)
    peaks: dict[str, int] = {}
    phases = list(itertools.pairwise(marks))
    for when, running in _running_total(events):
        for (name, start), (_, stop) in phases:
            if start <= when < stop and name != "build":
                peaks[name] = max(peaks.get(name, 0), running)
    # fp16's loss scaler skips a step that overflows: a skipped step measures no optimizer step
    skipped = engine.skipped_steps
    engine.destroy()
    return {"stage": stage, "precision": precision, "offload": offload, "params": params,
            "peaks": peaks, "skipped": skipped, "rank": int(os.environ["RANK"])}


def main() -> None:
    deepspeed.init_distributed(dist_backend="gloo")
    for case in sys.argv[1:]:
        stage, precision, offload = case.split(":")
        # one write(2) per line, under PIPE_BUF: the two ranks share the pipe, and print()
        # writes the text and its newline separately (their lines were seen interleaved)
        line = "PEAK " + json.dumps(measure(int(stage), precision, offload))
        os.write(1, (line + "\n").encode())
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
