"""Run under torchrun (2 ranks, gloo): the bytes of tensors a DeepSpeed engine really holds.

For each ZeRO stage and precision it builds a Llama-shaped model, takes one optimizer step
(optimizer states exist only after the first), then a second backward pass, and counts every
tensor storage alive in the process at that moment (parameters, gradient partitions, fp32
master copies, Adam moments), less what was alive before the model was built.

What it shows, exactly: the bytes of tensor storages that Python objects reach (found
through ``gc``), at ONE moment (after the second backward pass, before the step), on each
rank. It does not see storage held only by C++ (DeepSpeed's internal flat buffers while not
exposed as tensors, the allocator's cache), nor the transient peak of the optimizer step.
The communication buckets are forced down to 1000 elements and ZeRO-3 keeps no gathered
layer, so that the count is the model states alone, which is what the estimator's
``model_states`` term predicts. Prints one JSON line per case from EVERY rank. Not a test
module itself: tests/test_engine_bytes.py runs it.
"""

import gc
import json
import os
import sys

import deepspeed
import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPE = {"hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4,
         "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 4096,
         "max_position_embeddings": 128, "tie_word_embeddings": False}


def alive_bytes() -> int:
    storages = {}
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and not obj.is_meta:
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def measure(stage: int, precision: str) -> dict[str, object]:
    gc.collect()
    before = alive_bytes()
    torch.manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = LlamaForCausalLM(LlamaConfig(**SHAPE)).to(dtype)
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
    tokens = torch.randint(0, SHAPE["vocab_size"], (1, 16))
    engine.backward(engine(input_ids=tokens, labels=tokens).loss)
    engine.step()
    loss = engine(input_ids=tokens, labels=tokens).loss
    engine.backward(loss)
    del loss
    gc.collect()
    held = alive_bytes() - before
    engine.step()
    engine.destroy()
    del engine
    gc.collect()
    return {"stage": stage, "precision": precision, "params": params, "bytes": held,
            "rank": int(os.environ["RANK"])}


def main() -> None:
    deepspeed.init_distributed(dist_backend="gloo")
    cases = [(s, p) for s in (0, 1, 2, 3) for p in sys.argv[1:] or ("fp32", "bf16")]
    for stage, precision in cases:
        # one write(2) per line: the two ranks share the pipe (print() writes the text and
        # its newline separately, and lines can interleave)
        os.write(1, ("ENGINE " + json.dumps(measure(stage, precision)) + "\n").encode())
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
