"""The kit's data: SFT puts the loss on the response only, CPT on every token, and the batch
a rank sees depends only on (seed, step, micro-step, rank), so a resumed job sees what an
uninterrupted one would have. Uses the kit's real tokenizer (jobs/models/tiny-llama)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from transformers import AutoTokenizer

from abcitrain.train.data import IGNORE, StepSampler, load_cpt, load_sft, split


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(str(ROOT / "jobs/models/tiny-llama"),
                                         local_files_only=True)


def test_sft_loss_is_on_the_response_and_its_end_token_only(tmp_path: Path,
                                                            tokenizer: Any) -> None:
    rows = [{"prompt": "Question: 2 + 2?\nAnswer: ", "response": "4 points."},
            {"prompt": "Q: nodes?\nA: ", "response": "8 / 4 = 2 nodes."}]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ex = load_sft(data, tokenizer, seq_len=40)
    for i, row in enumerate(rows):
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        response = tokenizer(row["response"], add_special_tokens=False)["input_ids"]
        labels = ex.labels[i].tolist()
        n = len(prompt) + len(response) + 1
        assert labels[:len(prompt)] == [IGNORE] * len(prompt)
        assert labels[len(prompt):n] == [*response, tokenizer.eos_token_id]
        assert labels[n:] == [IGNORE] * (40 - n)                 # padding carries no loss
        assert ex.attention_mask[i].tolist() == [1] * n + [0] * (40 - n)
        assert ex.input_ids[i, :n].tolist() == [*prompt, *response, tokenizer.eos_token_id]
    assert ex.target_tokens() == sum(
        len(tokenizer(r["response"], add_special_tokens=False)["input_ids"]) + 1 for r in rows)


def test_sft_rows_whose_prompt_fills_seq_len_are_dropped_and_bad_lines_named(
        tmp_path: Path, tokenizer: Any) -> None:
    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps({"prompt": "x " * 50, "response": "y"}) + "\n"
                    + json.dumps({"prompt": "a", "response": "b"}) + "\n")
    assert len(load_sft(data, tokenizer, seq_len=16)) == 1
    data.write_text('{"prompt": "a"}\n')
    with pytest.raises(ValueError, match=r"sft.jsonl:1: expected a JSON object with prompt"):
        load_sft(data, tokenizer, seq_len=16)


def test_cpt_blocks_train_on_every_token(tokenizer: Any) -> None:
    ex = load_cpt(ROOT / "jobs/data/cpt.txt", tokenizer, seq_len=32)
    assert ex.input_ids.shape[1] == 32 and len(ex) > 10
    assert bool((ex.labels == ex.input_ids).all()) and bool(ex.attention_mask.all())
    train, held = split(ex, 0.1, seed=1)
    assert held is not None and len(train) + len(held) == len(ex) and len(held) >= 1


def test_the_batch_order_is_a_function_of_the_step() -> None:
    a = StepSampler(size=37, seed=5, micro_batch=2, grad_accum=3, world=2)
    b = StepSampler(size=37, seed=5, micro_batch=2, grad_accum=3, world=2)
    order = [(step, m, r) for step in (40, 7) for m in range(3) for r in range(2)]
    first = {key: a.indices(*key) for key in order}
    # the other sampler is asked in the reverse order, twice for one key and after an extra
    # call: hidden iterator state would change its answers
    b.indices(3, 0, 0)
    later = {key: b.indices(*key) for key in reversed(order)}
    assert b.indices(7, 1, 1) == later[(7, 1, 1)]
    assert first == later                                    # no hidden iterator state
    # one step's 12 samples over ranks and micro-steps are 12 distinct positions of an epoch
    step0 = [i for m in range(3) for r in range(2) for i in a.indices(0, m, r)]
    assert len(set(step0)) == 12
    epoch = [i for s in range(4) for m in range(3) for r in range(2) for i in a.indices(s, m, r)]
    assert sorted(epoch[:37]) == list(range(37))             # each example once per epoch
