"""Benchmark: `abcitrain submit` on real Slurm against a bare `sbatch` of the same script,
as a user types each: one new process per submission, alternating, same cluster, one run.

abcitrain's side checks the spec, renders the script, prices it, checks the budget, submits
and records the job and its charge; the baseline submits the script abcitrain rendered
(`abcitrain render -o`), so both make the same Slurm job. Target (issue: performance): the
median overhead at most 80 ms.

Needs the test Slurm up (run as root on this Debian machine)::

    bash tests/infra/slurm-up.sh
    .venv/bin/python bench/submit_overhead.py [--runs 15] [--json]
    bash tests/infra/slurm-down.sh

Every job is submitted held and cancelled at the end, by id. Exit status 1 when the target
is missed. Not a timed test.

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
from pathlib import Path

import yaml
from typed import abcitrain_argv

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 80.0


def _timed(argv: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=True).stdout
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="One JSON line at the end.")
    args = parser.parse_args()
    if subprocess.run(["scontrol", "ping"], capture_output=True, check=False).returncode:
        sys.exit("the test Slurm is not up: bash tests/infra/slurm-up.sh (see the docstring)")
    # the bytecode a wheel's install writes (see the module docstring)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "abcitrain")],
                   check=True, stdout=subprocess.DEVNULL)
    ids: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        here = Path(tmp)
        os.environ.update(ABCITRAIN_DATA_DIR=f"{tmp}/data", ABCITRAIN_CONFIG_DIR=f"{tmp}/cfg",
                          ABCITRAIN_CLUSTERS_PATH=str(ROOT / "tests" / "data" / "clusters"))
        (here / "job.yaml").write_text(yaml.safe_dump({
            "name": "bench", "cluster": "slurm-test", "resource": "gpu", "walltime": "0:05:00",
            "hold": True, "command": ["true"]}))
        cli = abcitrain_argv()
        subprocess.run([*cli, "render", "job.yaml", "-o", "job.sh"], cwd=here, check=True,
                       capture_output=True)
        ours, theirs = [], []
        try:
            for i in range(args.runs + 1):            # the first pair warms caches: dropped
                took, out = _timed([*cli, "submit", "--parsable", "job.yaml"], here)
                ids.append(out.strip())
                if i:
                    ours.append(took)
                took, out = _timed(["sbatch", "--parsable", "job.sh"], here)
                ids.append(out.strip().split(";")[0])
                if i:
                    theirs.append(took)
        finally:
            subprocess.run(["scancel", *ids], check=False, timeout=300)
    assert all(i.isdigit() for i in ids), ids
    mine, base = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    print(f"sbatch job.sh (rendered by abcitrain): median {base:6.1f} ms "
          f"(min {min(theirs) * 1000:.1f}, max {max(theirs) * 1000:.1f}, {len(theirs)} runs)")
    print(f"abcitrain submit job.yaml:             median {mine:6.1f} ms "
          f"(min {min(ours) * 1000:.1f}, max {max(ours) * 1000:.1f}, {len(ours)} runs)")
    over = mine - base
    print(f"overhead: {over:+.1f} ms (target <= {TARGET_MS:.0f} ms)")
    if args.json:
        print(json.dumps({"metric": "submit on real Slurm", "baseline_ms": base,
                          "abcitrain_ms": mine, "overhead_ms": over, "target_ms": TARGET_MS,
                          "ok": over <= TARGET_MS}))
    return 0 if over <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
