"""Benchmark: stream 1,000,000 accounting records into the points ledger.

Targets (issue: points): bounded memory, under 300 MB peak RSS, and within 10x the time
`awk` takes to sum the same file's elapsed column, measured in the same run. Both formats:
`sacct --parsable2` lines and `qacct -j` records (with the fields abcitrain reads plus the
usual neighbours; a full ABCI record has ~45 lines, this one 14).

    python bench/import_accounting.py [--records 1000000] [--format sacct|qacct|both]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROFILE = """extends: slurm
tariffs:
  minimum_seconds: 1.8
  services: [{from: 2024-04-01, spot: 1.0, reserved: 1.5}]
  types:
    gpu: [{from: 2024-04-01, rate: 1.2}]
    cpu: [{from: 2024-04-01, rate: 0.2}]
"""


def write_sacct(path: Path, n: int) -> None:
    rnd = random.Random(1)
    with path.open("w") as f:
        f.write("JobID|User|Account|Partition|NNodes|Submit|ElapsedRaw|State\n")
        for i in range(n):
            f.write(f"{100000 + i}|user{i % 7}|grp{i % 3}|{'gpu' if i % 4 else 'cpu'}|"
                    f"{1 + i % 4}|2025-0{1 + i % 9}-1{i % 10}T10:00:00|{rnd.randint(0, 86400)}|"
                    "COMPLETED\n")


def write_qacct(path: Path, n: int) -> None:
    rnd = random.Random(2)
    with path.open("w") as f:
        for i in range(n):
            f.write("==============================================================\n"
                    f"qname        gpu\nhostname     g{i % 1000:04d}\ngroup        grp{i % 3}\n"
                    f"owner        user{i % 7}\nproject      grp{i % 3}\njobname      run.sh\n"
                    f"jobnumber    {100000 + i}\ntaskid       undefined\n"
                    f"qsub_time    0{1 + i % 9}/1{i % 10}/2024 11:55:14.706\n"
                    f"granted_pe   NONE\nslots        1\nfailed       0\n"
                    f"ru_wallclock {rnd.randint(0, 86400)}.020\n"
                    f"category     -U grp{i % 3} -l h_rt=86400,rt_F={1 + i % 4}\n")


def run(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and the child's peak RSS in MB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed:\n{proc.stdout}\n{proc.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) // 1024


def bench(fmt: str, n: int, work: Path) -> bool:
    data = work / f"{fmt}.txt"
    (write_sacct if fmt == "sacct" else write_qacct)(data, n)
    env = {**os.environ, "ABCITRAIN_DATA_DIR": str(work / f"data-{fmt}"),
           "ABCITRAIN_CONFIG_DIR": str(work / "config")}
    awk = (["awk", "-F|", "NR > 1 {s += $7} END {print s}", str(data)] if fmt == "sacct" else
           ["awk", '$1 == "ru_wallclock" {s += $2} END {print s}', str(data)])
    awk_s, _ = run(awk, env)
    cluster = "benchslurm" if fmt == "sacct" else "abci2"
    imp_s, rss = run([sys.executable, "-m", "abcitrain.cli", "points", "import", str(data),
                      "--format", fmt, "--cluster", cluster], env)
    ratio = imp_s / awk_s
    size = data.stat().st_size / 1e6
    print(f"{fmt}: {n:,} records ({size:.0f} MB): awk {awk_s:.2f} s, import {imp_s:.2f} s, "
          f"ratio {ratio:.1f} (target <= 10); peak RSS {rss} MB (target < 300)")
    return ratio <= 10 and rss < 300


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["sacct", "qacct", "both"], default="both")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config" / "clusters").mkdir(parents=True)
        (work / "config" / "clusters" / "benchslurm.yaml").write_text(PROFILE)
        for fmt in (["sacct", "qacct"] if args.format == "both" else [args.format]):
            ok = bench(fmt, args.records, work) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
