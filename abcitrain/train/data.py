"""Training data for the two modes, and a batch order that depends only on the step.

- CPT (continued pre-training): raw text files, tokenized, documents joined with the
  end-of-sequence token and cut into ``seq_len`` blocks; every token is a target.
- SFT (supervised fine-tuning): JSON lines with ``prompt`` and ``response``; the loss is on
  the response (and its end token) only: prompt and padding positions get the label -100
  that Hugging Face's loss ignores.

Batches are picked by position, not by iterating a loader: the sample a rank sees at
(step, micro-step) is a pure function of the seed and those numbers. A job that resumes at
step k therefore sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

IGNORE = -100


@dataclass(frozen=True)
class Examples:
    """Tokenized examples, all ``seq_len`` long: inputs, labels and the attention mask."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def rows(self, index: Sequence[int]) -> dict[str, torch.Tensor]:
        """The rows at ``index``, as model keyword arguments."""
        idx = torch.as_tensor(list(index), dtype=torch.long)
        return {"input_ids": self.input_ids[idx], "labels": self.labels[idx],
                "attention_mask": self.attention_mask[idx]}

    def target_tokens(self) -> int:
        """Tokens that carry a loss (for tokens-per-second figures)."""
        return int((self.labels != IGNORE).sum())


def _files(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix in suffixes and p.is_file())
        if not found:
            raise ValueError(f"{path} has no {' or '.join(suffixes)} files")
        return found
    if not path.is_file():
        raise ValueError(f"{path} does not exist")
    return [path]


def load_cpt(path: Path, tokenizer: Any, seq_len: int) -> Examples:
    """Raw text (a file or a folder of .txt/.md files) cut into ``seq_len`` token blocks."""
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for file in _files(path, (".txt", ".md")):
        for doc in file.read_text(encoding="utf-8").split("\n\n"):
            if doc.strip():
                stream += tokenizer(doc.strip(), add_special_tokens=False)["input_ids"]
                if eos is not None:
                    stream.append(eos)
    blocks = len(stream) // seq_len
    if blocks == 0:
        raise ValueError(f"{path}: {len(stream)} tokens, fewer than one block of {seq_len}")
    ids = torch.tensor(stream[: blocks * seq_len], dtype=torch.long).view(blocks, seq_len)
    return Examples(ids, ids.clone(), torch.ones_like(ids))


def load_sft(path: Path, tokenizer: Any, seq_len: int) -> Examples:
    """Prompt/response JSON lines, padded or cut to ``seq_len``, loss on the response."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = tokenizer.eos_token_id
    rows_ids, rows_labels, rows_mask = [], [], []
    for file in _files(path, (".jsonl",)):
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                prompt, response = str(record["prompt"]), str(record["response"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{file}:{n}: expected a JSON object with prompt and "
                                 f"response ({exc})") from None
            p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            r = tokenizer(response, add_special_tokens=False)["input_ids"]
            if eos is not None:
                r = [*r, eos]
            ids = (p + r)[:seq_len]
            labels = ([IGNORE] * len(p) + r)[:seq_len]
            if all(label == IGNORE for label in labels):
                continue   # the prompt alone fills seq_len: nothing to learn from this row
            fill = seq_len - len(ids)
            rows_ids.append(ids + [pad] * fill)
            rows_labels.append(labels + [IGNORE] * fill)
            rows_mask.append([1] * len(ids) + [0] * fill)
    if not rows_ids:
        raise ValueError(f"{path}: no example has a response within seq_len={seq_len}")
    return Examples(torch.tensor(rows_ids), torch.tensor(rows_labels), torch.tensor(rows_mask))


def split(examples: Examples, fraction: float, seed: int) -> tuple[Examples, Examples | None]:
    """Hold out ``fraction`` of the examples (at least one) for evaluation, chosen by seed."""
    if fraction <= 0 or len(examples) < 2:
        return examples, None
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))
    held = max(1, int(len(examples) * fraction))
    ev, tr = order[:held].tolist(), order[held:].tolist()

    def pick(idx: list[int]) -> Examples:
        rows = examples.rows(idx)
        return Examples(rows["input_ids"], rows["labels"], rows["attention_mask"])

    return pick(tr), pick(ev)


class StepSampler:
    """Which rows a rank trains on at (step, micro-step): a fixed function of the seed.

    Sample positions run through the data epoch by epoch, each epoch in its own seeded
    order; position ``p`` of the whole run is taken by one rank at one micro-step.
    """

    def __init__(self, size: int, seed: int, micro_batch: int, grad_accum: int,
                 world: int) -> None:
        self.size, self.seed = size, seed
        self.micro_batch, self.grad_accum, self.world = micro_batch, grad_accum, world
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._orders = {epoch: torch.randperm(self.size, generator=gen).tolist()}
        return self._orders[epoch]

    def indices(self, step: int, micro: int, rank: int) -> list[int]:
        """Rows for optimizer step ``step`` (0-based), micro-step ``micro`` and ``rank``."""
        per_step = self.micro_batch * self.grad_accum * self.world
        first = step * per_step + (micro * self.world + rank) * self.micro_batch
        out = []
        for p in range(first, first + self.micro_batch):
            out.append(self._order(p // self.size)[p % self.size])
        return out
