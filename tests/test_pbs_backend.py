"""PBS Professional (ABCI 3.0) backend, tested against CAPTURED REAL OUTPUTS.

PBS Pro cannot be installed on this machine, so nothing here talks to a live PBS server.
Every scheduler answer below is read from tests/data/samples/ (copied from the ABCI 3.0 user
guide and other PBS Pro sites; tests/data/samples/SOURCES.md gives each file's source). The
service-level test swaps the transport, the one seam that runs commands, for one that replays
those captured answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATA, Scripted

from abcitrain.backends.base import Output
from abcitrain.backends.pbs import PbsBackend
from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec
from abcitrain.batch.store import JobStore
from abcitrain.domain import JobState
from abcitrain.errors import SchedulerError
from abcitrain.points.ledger import Ledger
from abcitrain.service import following, submitting
from abcitrain.transport import RunResult

SAMPLES = DATA / "samples" / "pbs"
PBS = PbsBackend()


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


@pytest.mark.parametrize(("name", "job_id"), [
    ("qsub.txt", "1234.pbs1"), ("qsub-reservation-queue.txt", "9290.pbs1"),
    ("qsub-array.txt", "9[].djoko"), ("qsub-openpbs.txt", None)])
def test_job_id_from_real_qsub_output(name: str, job_id: str | None) -> None:
    text = sample(name)
    got = PBS.parse_submit(Output(text, "", 0))
    assert got == (job_id or text.strip())


def test_held_and_running_jobs_from_real_json() -> None:
    held = PBS.parse_status(Output(sample("qstat-x-f-F-json-held-openpbs19.json"), "", 0),
                            ["157.pbs"])
    assert held["157.pbs"].state is JobState.HELD and held["157.pbs"].raw_state == "H"
    running = PBS.parse_status(
        Output(sample("qstat-x-f-F-json-running-metacentrum.json"), "", 0), ["12860476"])
    assert running["12860476"].state is JobState.RUNNING


def test_a_finished_job_missing_from_qstat_without_x_is_not_reported_done() -> None:
    # Polaris: `qstat -f -F json` (no -x) on a finished job printed no "Jobs" at all.
    got = PBS.parse_status(Output(sample("qstat-f-F-json-finished-no-x-stdout.json"),
                                  sample("qstat-error-job-finished.txt"), 35), ["5487654"])
    assert got == {}
    assert PBS.status_argv(["1.pbs1"])[:2] == ["qstat", "-x"]   # we always ask with -x


@pytest.mark.parametrize(("exit_status", "cancelled", "state"), [
    (0, False, JobState.COMPLETED), (1, False, JobState.FAILED),
    (-29, False, JobState.TIMEOUT), (271, True, JobState.CANCELLED),
    (271, False, JobState.FAILED)])
def test_finished_states_from_exit_status(exit_status: int, cancelled: bool,
                                          state: JobState) -> None:
    # No captured JSON of a finished ABCI job exists (SOURCES.md, "Not found"): this record is
    # the captured held job with job_state F and an Exit_status as PBS Pro documents them
    # (-29 = JOB_EXEC_KILL_WALLTIME; 256+N = killed by signal N, qdel sends SIGTERM).
    data = json.loads(sample("qstat-x-f-F-json-held-openpbs19.json"))
    record = data["Jobs"]["157.pbs"]
    record.update(job_state="F", Exit_status=exit_status,
                  resources_used={"walltime": "01:02:03"})
    got = PBS.parse_status(Output(json.dumps(data), "", 0), ["157.pbs"],
                           frozenset({"157.pbs"}) if cancelled else frozenset())
    assert got["157.pbs"].state is state
    assert got["157.pbs"].elapsed_s == 3723


@pytest.mark.parametrize(("line", "meaning"), [
    (0, "over a limit of its queue"), (1, "resource value was refused"),
    (2, "could not save the job"), (3, "no queue accepts this job")])
def test_real_qsub_refusals_get_a_plain_explanation(line: int, meaning: str) -> None:
    text = sample("qsub-errors.txt").splitlines()[line]
    explanation = PBS.explain(text)
    assert explanation is not None and meaning in explanation


def test_real_qdel_errors_are_explained() -> None:
    assert "does not know this job" in (PBS.explain(sample("qdel-error.txt")) or "")
    assert "already finished" in (PBS.explain(sample("qdel-error-finished.txt")) or "")


ABCI3_JOB = {"name": "sft", "cluster": "abci3", "resource": "rt_HF", "nodes": 2,
             "walltime": "2:00:00", "group": "gaa50000", "command": ["python", "train.py"]}


def test_submit_and_follow_through_the_service(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    qsub = RunResult(("qsub",), 0, sample("qsub.txt"), "")
    answers = {"qsub": qsub}              # changed between calls below
    tr = Scripted(lambda argv: answers[argv[0]])
    plan = plan_job(*parse_spec(ABCI3_JOB))
    sub = submitting.submit(plan, store, tr, submit_dir=str(tmp_path))
    assert sub.job_id == "1234.pbs1"
    assert tr.calls == [["qsub", sub.script_path]]
    assert "#PBS -P gaa50000" in tr.files[sub.script_path]
    # the captured running job, renamed to the id qsub gave (ABCI's docs show no qstat -f)
    data = json.loads(sample("qstat-x-f-F-json-running-metacentrum.json"))
    data["Jobs"] = {"1234.pbs1": next(iter(data["Jobs"].values()))}
    answers["qstat"] = RunResult(("qstat",), 0, json.dumps(data), "")
    [rec] = following.refresh(store.recent(), store, tr)
    assert rec.state == "RUNNING"
    assert tr.calls[-1] == ["qstat", "-x", "-t", "-f", "-F", "json", "1234.pbs1"]
    [charge] = Ledger().rows()
    assert charge["estimate_e4"] == 30 * 10000            # 2 x rt_HF x 2 h x 7.5 points/h
    # finished: the same record with job_state F and resources_used as PBS reports them
    record = data["Jobs"]["1234.pbs1"]
    record.update(job_state="F", Exit_status=0, resources_used={"walltime": "00:30:00"})
    answers["qstat"] = RunResult(("qstat",), 0, json.dumps(data), "")
    [rec] = following.refresh(store.recent(), store, tr)
    assert rec.state == "COMPLETED"
    [charge] = Ledger().rows()
    assert charge["actual_e4"] == 75000                   # 2 x 7.5 x 0.5 h = 7.5 points


def test_a_real_refusal_reaches_the_user_in_pbs_words(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    words = sample("qsub-errors.txt").splitlines()[0]
    tr = Scripted(lambda argv: RunResult(tuple(argv), 188, "", words + "\n"))
    with pytest.raises(SchedulerError) as info:
        submitting.submit(plan_job(*parse_spec(ABCI3_JOB)), store, tr, submit_dir=str(tmp_path))
    text = str(info.value)
    assert words in text and "What it means: the job is over a limit" in text
    assert store.recent() == []          # nothing recorded


def test_reservation_job_uses_the_reservation_queue_and_rtype() -> None:
    plan = plan_job(*parse_spec(dict(ABCI3_JOB, reservation="R1234.pbs1")))
    assert "-q R1234" in plan.directives and "-v RTYPE=rt_HF" in plan.directives
    assert "-q rt_HF" not in plan.directives
