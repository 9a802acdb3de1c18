"""The baseline of bench/kit_throughput.py: the same model, data, DeepSpeed config and batch
split, trained by the plain Hugging Face Trainer. One process per rank (abcitrain launch).

    python bench/hf_trainer_baseline.py RUN/train.json OUT.json
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if not Path("/dev/nvidia0").exists():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from abcitrain.train.trainer import build_model, load_data, load_run


class Rows(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, examples: object) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.examples.rows([i]).items()}  # type: ignore[attr-defined]


class StepTimes(TrainerCallback):
    """The wall clock at the end of every optimizer step: the bench takes the differences,
    the same whole-cycle span (batch fetch, forward, backward, step, bookkeeping) it takes
    from the kit's per-step timestamps."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
        self.ends.append(time.time())


def main() -> None:
    cfg, ds, out = load_run(Path(sys.argv[1]))
    dtype = torch.bfloat16 if ds.get("bf16", {}).get("enabled") else torch.float32
    torch.manual_seed(cfg.seed)
    tokenizer, model = build_model(cfg, dtype)
    train_set, _ = load_data(cfg, tokenizer)
    opt = ds["optimizer"]["params"]
    args = TrainingArguments(
        output_dir=str(out / "hf-baseline"), max_steps=cfg.steps,
        per_device_train_batch_size=ds["train_micro_batch_size_per_gpu"],
        gradient_accumulation_steps=ds["gradient_accumulation_steps"],
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, adam_beta1=opt["betas"][0],
        adam_beta2=opt["betas"][1], adam_epsilon=opt["eps"], max_grad_norm=1.0,
        warmup_steps=cfg.warmup_steps, bf16=dtype == torch.bfloat16, deepspeed=ds,
        use_cpu=not torch.cuda.is_available(),
        ddp_backend=None if torch.cuda.is_available() else "gloo",
        save_strategy="no", report_to=[], logging_steps=10**9, disable_tqdm=True,
        gradient_checkpointing=cfg.gradient_checkpointing, dataloader_num_workers=0)
    timer = StepTimes()
    Trainer(model=model, args=args, train_dataset=Rows(train_set),
            callbacks=[timer]).train()
    if int(os.environ.get("RANK", "0")) == 0:
        Path(sys.argv[2]).write_text(json.dumps({"step_ends": timer.ends}))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
