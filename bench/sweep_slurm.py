"""A 1,000-task sweep on real Slurm: abcitrain's ONE array submission against 1,000 separate
``sbatch`` calls (the loop users write), and abcitrain's polling (one ``squeue`` for all
jobs per poll) against one ``squeue`` per job per poll. Same cluster, one run side by side.

Needs the test Slurm up (run as root on this Debian machine)::

    bash tests/infra/slurm-up.sh
    .venv/bin/python bench/sweep_slurm.py [--tasks 1000] [--polls 3]
    bash tests/infra/slurm-down.sh

Every job is submitted held and cancelled at the end, by id. The script checks that the
array holds every task, that every separate submission returned an id, and that each poll
answered for every job.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=3)
    args = parser.parse_args()
    if subprocess.run(["scontrol", "ping"], capture_output=True, check=False).returncode:
        sys.exit("the test Slurm is not up: bash tests/infra/slurm-up.sh (see the docstring)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(ABCITRAIN_DATA_DIR=f"{tmp}/data", ABCITRAIN_CONFIG_DIR=f"{tmp}/cfg",
                          ABCITRAIN_CLUSTERS_PATH=str(ROOT / "tests" / "data" / "clusters"))
        os.chdir(tmp)
        run(args.tasks, args.polls, Path(tmp))


def run(tasks: int, polls: int, tmp: Path) -> None:
    from abcitrain.api import submission as jobs
    from abcitrain.batch.store import JobRecord, JobStore
    from abcitrain.service.following import refresh
    from abcitrain.transport import LocalTransport

    spec = {"name": "sweep", "cluster": "slurm-test", "resource": "gpu", "walltime": 60,
            "hold": True, "command": ["echo", "${X}"],
            "sweep": {"grid": {"X": list(range(tasks))}}}
    ids: list[str] = []
    try:
        start = time.perf_counter()
        job = jobs.submit(spec)
        array_s = time.perf_counter() - start
        assert isinstance(job, jobs.Job)
        ids.append(job.job_id)
        listed = subprocess.run(["squeue", "--noheader", "--array", f"--jobs={job.job_id}",
                                 "--format=%i"], capture_output=True, text=True,
                                check=True).stdout.split()
        assert len(listed) == tasks, f"the array holds {len(listed)} tasks, not {tasks}"

        script = tmp / "one.sh"
        script.write_text("#!/bin/bash\necho \"$X\"\n")
        start = time.perf_counter()
        for x in range(tasks):
            out = subprocess.run(["sbatch", "--parsable", "--hold", "--partition=gpu",
                                  "--time=1", f"--export=ALL,X={x}", "--output=/dev/null",
                                  str(script)], capture_output=True, text=True, check=True)
            ids.append(out.stdout.strip().split(";")[0])
        separate_s = time.perf_counter() - start
        separate = ids[1:]
        assert len(set(separate)) == tasks and all(i.isdigit() for i in separate)

        # polling the 1,000 separate jobs: one query for all per poll, against one per job
        store = JobStore()
        for job_id in separate:
            store.add(JobRecord("slurm-test", job_id, "slurm", "one", time.time(), str(tmp),
                                str(script), "x", None, "PENDING", None, None, "", False, {}))
        records = [r for r in (store.get("slurm-test", j) for j in separate) if r]

        class Counting(LocalTransport):
            calls = 0

            def run(self, argv, cwd=None, timeout=None):  # type: ignore[no-untyped-def]
                Counting.calls += 1
                return super().run(argv, cwd, timeout)

        start = time.perf_counter()
        for _ in range(polls):
            got = refresh(records, store, Counting())
            assert {r.state for r in got} == {"HELD"}, {r.state for r in got}
        batched_s, batched_calls = time.perf_counter() - start, Counting.calls
        start = time.perf_counter()
        per_job_calls = 0
        for _ in range(polls):
            for job_id in separate:
                out = subprocess.run(["squeue", "--noheader", f"--jobs={job_id}",
                                      "--format=%i|%T"], capture_output=True, text=True,
                                     check=True).stdout
                per_job_calls += 1
                assert out.startswith(f"{job_id}|PENDING"), out
        per_job_s = time.perf_counter() - start
    finally:
        subprocess.run(["scancel", *ids], check=False, timeout=300)
    print(f"{tasks}-task sweep on real Slurm (test cluster, this machine):")
    print(f"  one array (abcitrain, with checks, price, ledger): {array_s:7.2f} s, 1 sbatch")
    print(f"  separate sbatch per task (a shell-style loop):    {separate_s:7.2f} s, "
          f"{tasks} sbatch")
    print(f"  submission ratio: {separate_s / array_s:.0f}x")
    print(f"{polls} polls of {tasks} jobs:")
    print(f"  abcitrain (one squeue for all): {batched_s:7.2f} s, {batched_calls} queries")
    print(f"  one squeue per job per poll:    {per_job_s:7.2f} s, {per_job_calls} queries")
    print(f"  polling ratio: {per_job_s / batched_s:.0f}x time, "
          f"{per_job_calls / batched_calls:.0f}x queries")


if __name__ == "__main__":
    main()
