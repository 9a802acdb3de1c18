"""The peak memory model (``abcitrain.memory.peak``) against a real DeepSpeed engine: 2 ranks on
CPU (gloo), every configuration the planner offers (ZeRO 0-3 x fp32/bf16/fp16 x offload none,
optimizer and, for ZeRO-3, optimizer+params: 24 cases), every tensor allocation and free
counted on every thread (tests/harness/alloc_bytes.c, preloaded) while two full training steps run
(tests/harness/peak_bytes.py says exactly what it counts).

The model is a 34M-parameter Llama (8 layers, hidden 512, vocabulary 8192): large enough that
the model states dominate the fixed overheads, small enough for CI. On CPU the device is the
host, so what offload moves is counted with the rest (``StepPeak.total_peak``), and torch's
AdamW steps (as the kit's runs without a GPU do). The DeepSpeed config carries the very
communication settings ``abcitrain plan`` writes.

The estimate must lie within 5% of the measured peak both ways, per case and rank: the
issue's bound. Earlier versions read torch's profiler, which misses what gloo's worker
threads allocate and free; its peaks moved by up to 0.8 bytes/param between runs, and the
bounds had to be wider than 5% on one side. Counted on every thread, each case and rank
measured the same bytes in three runs (the ranks differ only where their partitions do)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, tagged_rows

from abcitrain.memory.peak import step_peak
from abcitrain.memory.shapes import ModelShape
from abcitrain.memory.states import TrainingSetup
from abcitrain.train.planner import OFFLOAD_ORDER, communication

#: How far the estimated peak may lie below / above the measured one.
BELOW, ABOVE = 0.05, 0.05
#: Every configuration the planner can choose (train.planner: OFFLOAD_ORDER, offload needs
#: ZeRO 1-3 and offloading the parameters ZeRO-3), in each precision it trains in (fp16 on
#: V100, bf16 on later GPUs, fp32 without one).
CASES = [(stage, precision, offload) for stage in (0, 1, 2, 3)
         for precision in ("fp32", "bf16", "fp16") for offload in OFFLOAD_ORDER
         if (stage or offload == "none") and (stage == 3 or offload != "optimizer+params")]
# tests/harness/peak_bytes.py's model, as the planner sees it (its architecture count is exact)
PROBE = ModelShape("probe", params=0, layers=8, hidden=512, heads=8, kv_heads=8,
                   intermediate=1408, vocab=8192, params_source="architecture")
PROBE = ModelShape(**{**PROBE.__dict__, "params": PROBE.architecture_params() or 0})


@pytest.fixture(scope="module")
def measured(alloc_counter: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT), "LD_PRELOAD": str(alloc_counter)}
    with socket.socket() as sock:      # a free port, never a fixed one another run may hold
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master_port={port}", str(ROOT / "tests" / "harness" / "peak_bytes.py"),
         *(f"{s}:{p}:{o}" for s, p, o in CASES)],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    rows = tagged_rows(proc.stdout, "PEAK ")
    assert proc.returncode == 0 and len(rows) == 2 * len(CASES), \
        proc.stdout[-3000:] + proc.stderr[-3000:]
    return rows


@pytest.mark.parametrize(("stage", "precision", "offload"), CASES)
def test_estimated_peak_matches_the_measured_peak(measured: list[dict[str, Any]], stage: int,
                                                  precision: str, offload: str) -> None:
    rows = [r for r in measured if (r["stage"], r["precision"], r["offload"]) ==
            (stage, precision, offload)]
    assert sorted(r["rank"] for r in rows) == [0, 1]
    setup = TrainingSetup(precision=precision, zero_stage=stage, offload=offload,
                          gpus_per_node=2, seq_len=128, micro_batch=2, checkpointing=True,
                          flash_attention=True, buffer_bytes=0, engine=True)
    peak = step_peak(PROBE, setup, communication(PROBE, on_gpu=False), torch_adam=True)
    estimated = peak.total_peak
    phases = sorted(peak.phases, key=lambda p: p.device_bytes + p.host_bytes, reverse=True)
    clear_lead = (phases[0].device_bytes + phases[0].host_bytes >
                  1.05 * (phases[1].device_bytes + phases[1].host_bytes))
    for row in rows:
        assert row["params"] == PROBE.params and row["skipped"] == 0   # both steps stepped
        measured_peak = max(row["peaks"].values())
        phase = max(row["peaks"], key=row["peaks"].get)
        each = ", ".join(f"{name} {value / PROBE.params:.2f}"
                         for name, value in row["peaks"].items())
        what = (f"ZeRO-{stage} {precision} offload {offload} rank {row['rank']}: measured "
                f"{measured_peak / PROBE.params:.2f} bytes/param ({phase}; {each}), estimated "
                f"{estimated / PROBE.params:.2f} ({phases[0].name})")
        assert (1 - BELOW) * measured_peak <= estimated <= (1 + ABOVE) * measured_peak, what
        if clear_lead:
            # The phase the estimate names reaches the measured peak, within 5%: which of two
            # measured phases is higher is noise when they lie that close (a CI run measured
            # ZeRO-1 fp32's backward at 16.06 bytes/param, just above its optimizer step). A
            # phase well below the peak still fails.
            assert row["peaks"][phases[0].name] >= 0.95 * measured_peak, what
