"""Polite polling (service.poll): one scheduler query per cluster per poll, whatever the number
of followed jobs; a minimum interval shared by all of a user's processes; back-off.

The 500-job test follows real jobs held in the REAL Slurm cluster (tests/infra) and counts
every command abcitrain runs; the others use a scripted transport that answers as squeue.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from conftest import Scripted

from abcitrain.batch.store import JobRecord, JobStore
from abcitrain.service import poll
from abcitrain.transport import LocalTransport, RunResult


def _record(job_id: str, cluster: str = "slurm-test", state: str = "PENDING") -> JobRecord:
    return JobRecord(cluster=cluster, job_id=job_id, scheduler="slurm", name=f"j{job_id}",
                     submitted_at=time.time(), submit_dir=".", script_path="x.sh",
                     output="x.out", array_tasks=None, state=state, exit_code=None,
                     elapsed_s=None, detail="", cancel_requested=False, spec={})


class Counting(LocalTransport):
    """The real local transport, counting the commands it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str], cwd: str | None = None,
            timeout: float | None = None) -> RunResult:
        self.calls.append(list(argv))
        return super().run(argv, cwd, timeout)


class FakeClock:
    """Time that passes only when the poller sleeps."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_following_500_jobs_for_10_polls_costs_at_most_10_queries(slurm_cluster: None,
                                                                    tmp_path: Path) -> None:
    # 500 real jobs, held so that none changes while they are followed (submitted with
    # sbatch directly: this test is about following, and 500 abcitrain submissions would
    # only make it slower)
    script = tmp_path / "held.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    out = subprocess.run(
        ["bash", "-c", f'for i in $(seq 500); do sbatch --parsable --hold --partition=gpu '
         f'--job-name=poll{{$i}} --output=/dev/null "{script}" || exit 1; done'],
        capture_output=True, text=True, timeout=600, check=True).stdout
    ids = out.split()
    assert len(ids) == 500
    try:
        store = JobStore()
        for job_id in ids:
            store.add(_record(job_id))
        records = [store.get("slurm-test", j) for j in ids]
        counting, clock, polls = Counting(), FakeClock(), []
        final = poll.follow([r for r in records if r is not None], store,
                            done=lambda rs: len(polls) >= 10, transport=counting,
                            sleep=clock.sleep, clock=clock, on_poll=polls.append)
        assert len(polls) == 10
        assert len(counting.calls) <= 10, counting.calls[:3]
        assert all(c[0] == "squeue" for c in counting.calls)
        assert {r.state for r in final} == {"HELD"} and len(final) == 500
    finally:
        subprocess.run(["scancel", *ids], check=False, timeout=120)


def _squeue_pending(argv: list[str]) -> RunResult:
    ids = argv[-1].split("=", 1)[1].split(",")
    return RunResult(tuple(argv), 0, "".join(f"{i}|PENDING|Priority\n" for i in ids), "")


def test_a_second_process_within_the_interval_reads_the_stored_answer() -> None:
    store = JobStore()
    store.add(_record("11"))
    rec = store.get("slurm-test", "11")
    assert rec is not None
    first, second = Scripted(_squeue_pending), Scripted(_squeue_pending)
    other_process = JobStore(store.path)          # the same file, opened again
    poll.poll_once([rec], store, first, now=100.0)
    got = poll.poll_once([rec], other_process, second, now=100.3)   # slurm-test: 0.5 s
    assert len(first.calls) == 1 and second.calls == []
    assert got[0].state == "PENDING"
    poll.poll_once([rec], other_process, second, now=100.6)
    assert len(second.calls) == 1


def test_one_poll_asks_once_for_every_unfinished_job_of_the_cluster() -> None:
    """Jobs another process follows are asked about in the same query, so one process's
    claim never leaves another's jobs stale."""
    store = JobStore()
    for job_id in ("1", "2", "3"):
        store.add(_record(job_id))
    store.add(_record("4", state="COMPLETED"))
    mine = store.get("slurm-test", "1")
    assert mine is not None
    scripted = Scripted(_squeue_pending)
    poll.poll_once([mine], store, scripted, now=50.0)
    assert len(scripted.calls) == 1
    asked = sorted(scripted.calls[0][-1].split("=", 1)[1].split(","))
    assert asked == ["1", "2", "3"]


def test_the_wait_doubles_while_nothing_changes_and_restarts_on_a_change() -> None:
    store = JobStore()
    store.add(_record("7"))
    rec = store.get("slurm-test", "7")
    assert rec is not None
    answers = ["PENDING"] * 8 + ["RUNNING"] * 2 + ["COMPLETED"]

    def squeue(argv: list[str]) -> RunResult:
        state = answers.pop(0)
        return RunResult(tuple(argv), 0, f"7|{state}|None\n", "")

    clock = FakeClock()
    scripted = Scripted(squeue)
    final = poll.follow([rec], store, transport=scripted, sleep=clock.sleep, clock=clock,
                        done=lambda rs: rs[0].state == "RUNNING" and not answers[:-1])
    # 2 s (START_S, above slurm-test's 0.5 s minimum), doubling up to 60 s while PENDING;
    # back to 2 s once the job started
    assert clock.sleeps == [2, 4, 8, 16, 32, 60, 60, 60, 2]
    assert final[0].state == "RUNNING"


def test_the_interval_is_per_cluster_and_from_the_profile() -> None:
    assert poll.min_interval_s("slurm-test") == 0.5        # tests/data/clusters
    assert poll.min_interval_s("local") == 1.0
    assert poll.min_interval_s("abci3") == poll.DEFAULT_MIN_INTERVAL_S == 10.0


def test_of_two_claims_at_the_same_moment_exactly_one_wins() -> None:
    a = JobStore()
    b = JobStore(a.path)
    assert [a.claim_poll("c", 10, now=5.0), b.claim_poll("c", 10, now=5.0)] == [True, False]
    assert b.claim_poll("c", 10, now=15.0) is True
    # a clock that went back (a stored time in the future) never locks polling out
    assert a.claim_poll("c", 10, now=1.0) is True
