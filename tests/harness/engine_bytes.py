"""Run under torchrun (2 ranks, gloo) with tests/harness/alloc_bytes.c preloaded: the bytes of
tensors a DeepSpeed engine really holds.

For each ZeRO stage and precision it builds a Llama-shaped model, takes one optimizer step
(optimizer states exist only after the first), then a second backward pass, and counts the
bytes of every tensor storage allocated since before the model was built and still live at
that moment (parameters, gradient partitions, fp32 master copies, Adam moments), on each
rank, whoever holds it: Python objects, DeepSpeed's C++ side or gloo's threads
(tests/harness/alloc_bytes.c counts torch's CPU allocations themselves). An earlier version found
tensors through ``gc`` and could not see storage held only by C++; the two counts agree
wherever both apply (measured: every case, after the warm-up below).

What it shows, exactly: what each rank holds at ONE moment (after the second backward pass,
before the step, once gloo's worker threads have let go of what they communicated: see
``settled``), not the transient peak of the optimizer step (tests/harness/peak_bytes.py). Each
precision's CPU kernels run once before anything is measured (alloc_counter.warm_up:
oneDNN keeps its 16-bit kernels for the whole process). The communication buckets are
forced down to 1000 elements and ZeRO-3 keeps no gathered layer, so that the count is the
model states alone, which is what the estimator's ``model_states`` term predicts. Prints one
JSON line per case from EVERY rank. Not a test module itself: tests/test_engine_bytes.py
runs it.
"""

import gc
import json
import os
import sys
import time

import deepspeed
import torch
from alloc_counter import AllocCounter, warm_up
from transformers import LlamaConfig, LlamaForCausalLM

SHAPE = {"hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4,
         "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 4096,
         "max_position_embeddings": 128, "tie_word_embeddings": False}


def _model(precision: str) -> LlamaForCausalLM:
    torch.manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return LlamaForCausalLM(LlamaConfig(**SHAPE)).to(dtype)


def _tokens() -> torch.Tensor:
    return torch.randint(0, SHAPE["vocab_size"], (1, 16))


def settled(counter: AllocCounter, quiet_s: float = 0.5, deadline_s: float = 30) -> int:
    """The bytes live once none has been freed for ``quiet_s``. gloo's worker thread keeps
    the last reference to a buffer it communicated a moment after the collective completes
    (ProcessGroupGloo drops its work item only when the thread next runs): on a loaded
    machine a reading taken at once can still count a gradient-sized temporary."""
    start = since = time.monotonic()
    last = counter.live()
    while time.monotonic() - since < quiet_s and time.monotonic() - start < deadline_s:
        time.sleep(0.01)
        now = counter.live()
        if now != last:
            last, since = now, time.monotonic()
    return last


def measure(stage: int, precision: str) -> dict[str, object]:
    gc.collect()
    counter = AllocCounter()
    model = _model(precision)
    params = sum(p.numel() for p in model.parameters())
    small = 1000
    config = {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1,
              "train_batch_size": 2, "steps_per_print": 10**9,
              "zero_optimization": {"stage": stage, "reduce_bucket_size": small,
                                    "allgather_bucket_size": small,
                                    "stage3_prefetch_bucket_size": small,
                                    "stage3_param_persistence_threshold": 0,
                                    "stage3_max_live_parameters": small},
              "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}}}
    if precision == "bf16":
        config["bf16"] = {"enabled": True}
    engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(),
                                      config=config)
    del model
    tokens = _tokens()
    engine.backward(engine(input_ids=tokens, labels=tokens).loss)
    engine.step()
    loss = engine(input_ids=tokens, labels=tokens).loss
    engine.backward(loss)
    del loss
    gc.collect()
    first = counter.live()
    held = settled(counter)
    engine.step()
    engine.destroy()
    del engine
    gc.collect()
    return {"stage": stage, "precision": precision, "params": params, "bytes": held, "first": first,
            "rank": int(os.environ["RANK"])}


def main() -> None:
    deepspeed.init_distributed(dist_backend="gloo")
    precisions = sys.argv[1:] or ["fp32", "bf16"]
    for precision in precisions:
        warm_up(_model(precision), _tokens())
    cases = [(s, p) for s in (0, 1, 2, 3) for p in precisions]
    for stage, precision in cases:
        # one write(2) per line: the two ranks share the pipe (print() writes the text and
        # its newline separately, and lines can interleave)
        os.write(1, ("ENGINE " + json.dumps(measure(stage, precision)) + "\n").encode())
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
