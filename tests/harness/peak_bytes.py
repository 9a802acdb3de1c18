"""Run under torchrun (2 ranks, gloo) with tests/harness/alloc_bytes.c preloaded: the PEAK bytes of
live tensors while a DeepSpeed engine trains, every allocation counted on every thread.

torch allocates each CPU tensor's storage with posix_memalign and frees it with free();
tests/harness/alloc_bytes.c (LD_PRELOAD) counts those blocks' bytes at every allocation and free,
whichever thread makes them, and keeps the highest value since the last reset: the CPU
counterpart of ``torch.cuda.max_memory_allocated``. Marks between the phases (forward,
backward, optimizer step) read and reset it, so each phase has its own peak. Two full steps
run (optimizer states are created at the first) and both count. The DeepSpeed config is the
one ``abcitrain plan`` writes for a run without a GPU: the communication settings come from
``abcitrain.train.planner.communication`` and torch's AdamW steps (``torch_adam``), so the
estimate is judged on the values it reads.

Why not torch's profiler (``profile_memory=True``), which earlier versions of this file
read: it records the allocations and frees of the threads it was started on only. gloo's
worker threads allocate (a 16-bit all-reduce's temporary: 2 bytes/param here) and free
(the last reference to a bucket or a gathered parameter they communicated) out of its
sight; rebuilt from what it did record, the peaks came out up to 0.8 bytes/param too high,
a different amount each run. Counted here, each case and rank gives the same bytes in every
run.

Before measuring, each precision's CPU kernels run once on the same model: oneDNN caches
the 16-bit matmul kernels it builds (and their buffers, through torch's allocator) for the
whole process, about 8 MB here, on a process's first 16-bit step. That is a fixed cost of
the CPU backend, outside the training step the estimate describes (a GPU's counterparts,
the CUDA context and cuBLAS's workspace, are the planner's fixed allowance).

What it does not see: memory not allocated as a tensor (gloo's own buffers, Python
objects). Prints one JSON line per case from EVERY rank. Not a test module itself:
tests/test_peak_memory.py compiles tests/harness/alloc_bytes.c and runs it.
"""

import gc
import json
import os
import sys

import deepspeed
import torch
from alloc_counter import AllocCounter, warm_up
from transformers import LlamaConfig, LlamaForCausalLM

from abcitrain.memory.shapes import ModelShape
from abcitrain.train.planner import communication

SHAPE = {"hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 8,
         "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 8192,
         "max_position_embeddings": 512, "tie_word_embeddings": False}
SEQ, MICRO = 128, 2
PROBE = ModelShape("probe", params=0, layers=8, hidden=512, heads=8, kv_heads=8,
                   intermediate=1408, vocab=8192)


def _model(precision: str) -> LlamaForCausalLM:
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SHAPE))
    if precision != "fp32":
        model = model.to(torch.bfloat16 if precision == "bf16" else torch.float16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def _tokens() -> torch.Tensor:
    return torch.randint(0, SHAPE["vocab_size"], (MICRO, SEQ))


def measure(stage: int, precision: str, offload: str) -> dict[str, object]:
    """Train two steps of ``stage``/``precision``/``offload`` and return each phase's peak
    bytes above what was live before the model was built."""
    gc.collect()
    counter = AllocCounter()
    counter.mark("build")
    model = _model(precision)
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
    tokens = _tokens()
    for _ in range(2):
        counter.mark("forward")
        loss = engine(input_ids=tokens, labels=tokens).loss
        counter.mark("backward")
        engine.backward(loss)
        del loss
        counter.mark("optimizer step")
        engine.step()
    counter.mark("end")
    # fp16's loss scaler skips a step that overflows: a skipped step measures no optimizer step
    skipped = engine.skipped_steps
    engine.destroy()
    return {"stage": stage, "precision": precision, "offload": offload, "params": params,
            "peaks": counter.peaks, "skipped": skipped, "rank": int(os.environ["RANK"])}


def main() -> None:
    deepspeed.init_distributed(dist_backend="gloo")
    for precision in dict.fromkeys(case.split(":")[1] for case in sys.argv[1:]):
        warm_up(_model(precision), _tokens())
    for case in sys.argv[1:]:
        stage, precision, offload = case.split(":")
        # one write(2) per line, under PIPE_BUF: the two ranks share the pipe, and print()
        # writes the text and its newline separately (their lines were seen interleaved)
        line = "PEAK " + json.dumps(measure(int(stage), precision, offload))
        os.write(1, (line + "\n").encode())
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
