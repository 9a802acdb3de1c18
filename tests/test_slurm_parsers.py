"""Slurm's accounting answers, as this project's own Slurm 22.05 printed them
(tests/data/samples/slurm/, see SOURCES.md). The real-cluster tests run the same paths
live; these pin the answers that appear only in a race (a job cancelled while pending
after the scheduler looked at it)."""

from __future__ import annotations

from conftest import DATA

from abcitrain.backends.base import Output
from abcitrain.backends.slurm import SlurmBackend

SAMPLES = DATA / "samples" / "slurm"


def test_accounting_asks_for_allocnodes_not_alloccpus() -> None:
    [argv] = SlurmBackend().accounting_argvs(["15"])
    fields = next(a for a in argv if a.startswith("--format=")).split("=", 1)[1].split(",")
    assert fields[4] == "AllocNodes", argv


def test_a_job_cancelled_while_pending_never_ran_and_one_that_ran_0_s_did() -> None:
    text = (SAMPLES / "sacct-cancelled-pending.txt").read_text()
    got = SlurmBackend().parse_accounting([Output(text, "", 0)], ["15", "16", "17", "18"])
    assert got["15"].task_elapsed == (2.0,)      # ran 2 s before its cancel
    assert got["16"].task_elapsed == ()          # waited on its dependency: nothing ran
    assert got["17"].task_elapsed == (0.0,)      # ran, 0 s: charged the minimum later
    assert got["18"].task_elapsed == ()          # a waiting array cancelled whole
    assert all(got[j].final_usage for j in got)


def test_alloccpus_cannot_tell_them_apart() -> None:
    # Why the field changed: with AllocCPUS the never-started job 16 reads like job 17
    cpus = (SAMPLES / "sacct-cancelled-pending-alloccpus.txt").read_text().splitlines()
    nodes = (SAMPLES / "sacct-cancelled-pending.txt").read_text().splitlines()
    assert cpus[1].rsplit("|", 1)[1] == cpus[2].rsplit("|", 1)[1] == "1"
    assert nodes[1].rsplit("|", 1)[1] == "0" != nodes[2].rsplit("|", 1)[1]


def test_a_failed_job_says_the_signal_that_ended_it_not_just_exit_0() -> None:
    """ExitCode 0:53 is Slurm's own failure to open the output file (the job never ran a
    line), 0:9 a SIGKILL; a cancelled job's signal is no news (its state says it)."""
    text = (SAMPLES / "sacct-signals.txt").read_text()
    got = SlurmBackend().parse_accounting([Output(text, "", 0)], ["3", "4", "5"])
    assert (got["3"].state.value, got["3"].exit_code) == ("FAILED", 0)
    assert "ended by signal 53 (sacct ExitCode 0:53)" in got["3"].detail
    assert "could not open the job's output" in got["3"].detail
    assert got["4"].detail == "ended by signal 9 (sacct ExitCode 0:9)"
    assert got["5"].state.value == "CANCELLED" and got["5"].detail == ""
