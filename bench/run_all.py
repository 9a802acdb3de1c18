"""Every performance row of the issue in one command, each a ratio (or a difference) to a
baseline measured in the same run on this machine, printed as one table.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--ci-seconds S]

Rows: ``cold`` (render against importing click, jinja2 and yaml), ``submit`` (abcitrain
submit against bare sbatch on the test Slurm: started here with tests/infra/slurm-up.sh
when it is not up, as root, and stopped again), ``function`` (a function job on `local`
against submitit's LocalExecutor), ``import`` (1M sacct and qacct records against awk),
``kit`` (the starter kit against HF Trainer + DeepSpeed, same model and ZeRO stage). CI's
wall time cannot be measured from inside CI: pass the last run's with ``--ci-seconds``.
``--quick`` runs fewer repetitions and 100k records (for a look, not for the record).
Each row runs its own script (bench/*.py, each documented on its own); a row whose script
fails to run says so in the table. Exit status 1 when any row misses its target.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
INFRA = ROOT / "tests" / "infra"
PY = sys.executable


def _run(argv: list[str], timeout: int) -> tuple[list[dict[str, Any]], str]:
    """The JSON lines a bench script printed, and its whole output for the log."""
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          check=False)
    rows = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows, done.stdout + done.stderr


Row = tuple[str, str, str, str, "bool | None"]


def _row(metric: str, baseline: str, target: str, rows: list[dict[str, Any]],
         measured: Callable[[dict[str, Any]], str]) -> Row:
    """A table row from a bench's first JSON line (or saying the bench did not run)."""
    if not rows:
        return (metric, baseline, target, "did not run", None)
    return (metric, baseline, target, measured(rows[0]), rows[0]["ok"])


def _slurm_up() -> Callable[[], None] | None:
    """Start the test Slurm when it is not answering; return how to stop what was started
    (nothing, when it was already up), or None when it cannot be started here."""
    if subprocess.run(["scontrol", "ping"], capture_output=True, check=False).returncode == 0:
        return lambda: None
    if os.geteuid() != 0:
        return None
    # the cluster's owner file names this process (tests/infra/common.sh)
    env = {**os.environ, "ABCITRAIN_TEST_OWNER": f"bench-{os.getpid()}",
           "ABCITRAIN_TEST_OWNER_PID": str(os.getpid())}
    up = subprocess.run(["bash", str(INFRA / "slurm-up.sh")], capture_output=True, env=env,
                        check=False, timeout=900)
    if up.returncode != 0:
        return None

    def stop() -> None:
        subprocess.run(["bash", str(INFRA / "slurm-down.sh")], env=env, capture_output=True,
                       check=False, timeout=300)

    return stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["cold", "submit", "function", "import", "kit"])
    parser.add_argument("--ci-seconds", type=float)
    args = parser.parse_args()
    quick = args.quick
    wanted = set(args.only or ["cold", "submit", "function", "import", "kit"])
    table: list[Row] = []
    logs: list[str] = []

    if "cold" in wanted:
        rows, log = _run([PY, str(BENCH / "cold_start.py"), "--json", "--runs",
                          "7" if quick else "21"], 900)
        logs.append(log)
        table.append(_row("`abcitrain render` cold start", "`import click, jinja2, yaml`",
                          "<= 1.5x", rows,
                          lambda r: f"{r['ratio']:.2f}x (spread {r['spread']:.0%})"))
    if "submit" in wanted:
        stop = _slurm_up()
        if stop is None:
            table.append(("`abcitrain submit` on real Slurm", "bare `sbatch`", "<= +80 ms",
                          "no test Slurm here (needs root)", None))
        else:
            try:
                rows, log = _run([PY, str(BENCH / "submit_overhead.py"), "--json", "--runs",
                                  "5" if quick else "15"], 1200)
            finally:
                stop()
            logs.append(log)
            table.append(_row("`abcitrain submit` on real Slurm",
                              "bare `sbatch` of the script", "<= +80 ms", rows,
                              lambda r: f"{r['overhead_ms']:+.0f} ms ({r['abcitrain_ms']:.0f}"
                              f" vs {r['baseline_ms']:.0f})"))
    if "function" in wanted:
        rows, log = _run([PY, str(BENCH / "function_job.py"), "--json", "--runs",
                          "5" if quick else "11"], 1200)
        logs.append(log)
        table.append(_row("Python function, submit to result, `local`",
                          "submitit LocalExecutor", "<= +0.1 s", rows,
                          lambda r: f"{r['overhead_s']:+.2f} s ({r['abcitrain_s']:.2f} vs "
                          f"{r['baseline_s']:.2f})"))
    if "import" in wanted:
        rows, log = _run([PY, str(BENCH / "import_accounting.py"), "--json", "--records",
                          "100000" if quick else "1000000"], 3600)
        logs.append(log)
        for row in rows or [{}]:
            table.append((f"accounting import ({row.get('metric', 'did not run')})",
                          "awk summing the file", "<= 4x, < 300 MB",
                          f"{row['ratio']:.1f}x, {row['rss_mb']} MB (storage alone "
                          f"{row['storage_ratio']:.1f}x)" if row else "did not run",
                          row.get("ok")))
    if "kit" in wanted:
        rows, log = _run([PY, str(BENCH / "kit_throughput.py"), "--json", "--repeats",
                          "1" if quick else "3", "--steps", "30" if quick else "60"], 3600)
        logs.append(log)
        table.append(_row("starter kit tokens/s", "HF Trainer + DeepSpeed, same ZeRO stage",
                          ">= 1.0x", rows,
                          lambda r: f"{r['ratio']:.3f}x (spread {r['spread']:.0%})"))
    if args.ci_seconds:
        table.append(("CI wall time (`.ci/run`, passed in)", "90 min cap", "<= 20 min",
                      f"{args.ci_seconds / 60:.1f} min", args.ci_seconds <= 20 * 60))

    for log in logs:
        print(log.rstrip())
        print()
    print("| metric | baseline | target | measured | met |")
    print("|---|---|---|---|---|")
    for metric, base, target, seen, ok in table:
        met = "yes" if ok else ("no" if ok is False else "-")
        print(f"| {metric} | {base} | {target} | {seen} | {met} |")
    return 1 if any(ok is False or ok is None for *_, ok in table) else 0


if __name__ == "__main__":
    raise SystemExit(main())
