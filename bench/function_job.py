"""Benchmark: a Python function as a job on the ``local`` cluster, from submit to result,
against submitit's own LocalExecutor running the same function, alternating in one run.

Both sides pickle the function, start a fresh Python process that runs it, and hand the
result back through files; abcitrain's side also renders, records and charges a job (the
local scheduler, the job store, the ledger) as on a cluster. Target (issue: performance):
abcitrain's median at most 0.1 s over submitit's.

    python bench/function_job.py [--runs 11] [--json]

Exit status 1 when the target is missed. Not a timed test.

abcitrain's modules are compiled to bytecode first (`compileall`), as `pip install` does
for a wheel: where PYTHONDONTWRITEBYTECODE is set (this machine's shell sets it), an
editable install would otherwise compile every module again in every run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.1


def add(a: int, b: int) -> int:
    """The function both sides run."""
    return a + b


def _time(executor: Any) -> float:
    start = time.perf_counter()
    job = executor.submit(add, 2, 3)
    if job.result() != 5:
        raise SystemExit(f"wrong result from {type(executor).__name__}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="One JSON line at the end.")
    args = parser.parse_args()
    # the bytecode a wheel's install writes (see the module docstring)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "abcitrain")],
                   check=True, stdout=subprocess.DEVNULL)
    import submitit

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # abcitrain's state and the local spool in the temporary folder, nothing of the user's
        os.environ.update({"ABCITRAIN_DATA_DIR": str(root / "data"),
                           "ABCITRAIN_CONFIG_DIR": str(root / "config"),
                           "ABCITRAIN_LOCAL_SPOOL": str(root / "spool")})
        os.chdir(root)
        sys.path.insert(0, str(Path(__file__).resolve().parent))   # `add` importable by name
        theirs = submitit.LocalExecutor(str(root / "submitit"))
        theirs.update_parameters(timeout_min=5)
        ours = submitit.AutoExecutor(str(root / "abcitrain"), cluster="abcitrain",
                                     abcitrain_cluster="local")
        ours.update_parameters(timeout_min=5, abcitrain_resource="cpu")
        sides: dict[str, tuple[Any, list[float]]] = {
            "submitit LocalExecutor": (theirs, []), "abcitrain (local)": (ours, [])}
        for executor, _ in sides.values():           # warm: imports, .pyc, first folders
            _time(executor)
        for _ in range(args.runs):
            for executor, times in sides.values():
                times.append(_time(executor))
    med: Callable[[list[float]], float] = statistics.median
    base = med(sides["submitit LocalExecutor"][1])
    mine = med(sides["abcitrain (local)"][1])
    for name, (_, times) in sides.items():
        print(f"{name:24} median {med(times):.3f} s  (min {min(times):.3f}, max "
              f"{max(times):.3f}, {len(times)} runs)")
    over = mine - base
    print(f"abcitrain - submitit: {over:+.3f} s (target <= +{TARGET_S} s)")
    if args.json:
        print(json.dumps({"metric": "function job, submit to result", "baseline_s": base,
                          "abcitrain_s": mine, "overhead_s": over, "target_s": TARGET_S,
                          "ok": over <= TARGET_S}))
    return 0 if over <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
