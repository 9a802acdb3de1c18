"""The memory estimator against a live DeepSpeed engine: 2 ranks on CPU, ZeRO stages 0-3,
fp32 and bf16. What each rank holds (parameters, gradients, optimizer states, master copies:
every tensor alive at the end of a backward pass, counted by tests/engine_bytes.py) must be
within 1% of ``estimate(..., engine=True)``'s model states."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from abcitrain.models.memory import TrainingSetup, estimate
from abcitrain.models.shapes import ModelShape


@pytest.fixture(scope="module")
def measured() -> list[dict[str, int | str]]:
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_port=29517", str(ROOT / "tests" / "engine_bytes.py")],
        env=env, capture_output=True, text=True, timeout=600, check=False)
    rows = [json.loads(line.split("ENGINE ", 1)[1]) for line in proc.stdout.splitlines()
            if line.startswith("ENGINE ")]
    assert proc.returncode == 0 and len(rows) == 8, proc.stdout[-3000:] + proc.stderr[-3000:]
    return rows


# The same shape as engine_bytes.SHAPE, as the estimator sees it.
SHAPE = ModelShape("probe", params=0, layers=4, hidden=256, heads=4, kv_heads=4,
                   intermediate=704, vocab=4096, params_source="architecture")


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_estimate_matches_what_each_rank_holds(measured: list[dict[str, int | str]],
                                               stage: int, precision: str) -> None:
    row = next(r for r in measured if r["stage"] == stage and r["precision"] == precision)
    shape = ModelShape(**{**SHAPE.__dict__, "params": SHAPE.architecture_params() or 0})
    assert shape.params == row["params"]                   # the architecture count is exact
    est = estimate(shape, TrainingSetup(precision=precision, zero_stage=stage,
                                        gpus_per_node=2, buffer_bytes=0, engine=True))
    predicted = est.model_states - est.gathered   # ZeRO-3 was told to keep no layer gathered
    held = int(row["bytes"])
    assert abs(held - predicted) <= 0.01 * predicted, (
        f"ZeRO-{stage} {precision}: engine holds {held:,} bytes, estimate {predicted:,} "
        f"({held / int(row['params']):.3f} vs {predicted / int(row['params']):.3f} per param)")


def test_the_paper_figures_differ_where_deepspeed_does() -> None:
    # fp32 ZeRO-2 on 8 GPUs: the paper's 4 + 12/8 = 5.5 bytes/param; DeepSpeed also keeps an
    # fp32 copy of its partition: 4 + 16/8 = 6.
    paper = estimate(SHAPE.__class__("7b", params=7 * 10**9),
                     TrainingSetup(precision="fp32", zero_stage=2, gpus_per_node=8))
    engine = estimate(SHAPE.__class__("7b", params=7 * 10**9),
                      TrainingSetup(precision="fp32", zero_stage=2, gpus_per_node=8,
                                    engine=True))
    assert paper.model_states == 38_500_000_000 and engine.model_states == 42_000_000_000
