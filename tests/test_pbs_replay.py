"""Replays: PBS Professional's answers to abcitrain's own jobs, as a live OpenPBS server gave
them once, replayed (nothing runs a PBS server in these tests).

Every answer here is a capture from a real OpenPBS
23.06 server (tests/data/samples/openpbs/, SOURCES.md says which command printed each file);
the transport that runs commands is swapped for one that replays them. Where a test changes
a capture (one subjob's exit status), the change is written out next to it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, Scripted, cli

from abcitrain.backends.base import Output
from abcitrain.backends.pbs import PbsBackend
from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec
from abcitrain.batch.store import JobStore
from abcitrain.domain import JobState
from abcitrain.points.ledger import Ledger
from abcitrain.points.tariffs import job_points, quote
from abcitrain.profiles import load_profile
from abcitrain.service import following, submitting
from abcitrain.transport import RunResult

LIVE = DATA / "samples" / "openpbs"
PBS = PbsBackend()


def captured(name: str) -> str:
    return (LIVE / name).read_text()


def status(name: str, *ids: str, cancelled: Sequence[str] = ()) -> dict[str, Any]:
    return PBS.parse_status(Output(captured(name), "", 0), list(ids), frozenset(cancelled))


# -- states as PBS records them ------------------------------------------------------------

def test_finished_failed_and_walltime_killed_jobs() -> None:
    done = status("a.json", "4.vm")["4.vm"]
    assert (done.state, done.exit_code) == (JobState.COMPLETED, 0)
    failed = status("b.json", "5.vm")["5.vm"]
    assert (failed.state, failed.exit_code) == (JobState.FAILED, 3)
    killed = status("f.json", "13.vm")["13.vm"]
    assert (killed.state, killed.exit_code) == (JobState.TIMEOUT, -29)
    assert "exceeded resource walltime" in killed.detail


def test_a_cancelled_job_is_cancelled_even_when_it_exited_0() -> None:
    # e.json: qdel of a running job; PBS recorded substate 91 "terminated by user1" with
    # Exit_status 0 (the job's shell ended cleanly on SIGTERM)
    got = status("e.json", "12.vm")["12.vm"]
    assert got.state is JobState.CANCELLED and got.exit_code == 0
    assert "terminated by user1" in got.detail
    assert got.task_elapsed == (1.0,) and got.final_usage       # it ran: its second is charged


def test_a_job_pbs_deleted_after_its_dependency_failed_is_cancelled_and_never_ran() -> None:
    # multi.json holds job 11: state F, substate 92, NO Exit_status, depend afterok:10.vm
    got = status("multi.json", "11.vm")["11.vm"]
    assert got.state is JobState.CANCELLED
    assert "afterok:10.vm" in got.detail and "can no longer be met" in got.detail
    assert got.task_elapsed == () and got.final_usage            # settled at zero


def test_an_unknown_id_is_left_out_not_done() -> None:
    answer = Output(captured("unk.json"), captured("unk.err"), 153)
    assert PBS.parse_status(answer, ["999.vm"]) == {}


def test_a_job_the_server_has_forgotten_is_unknown_and_says_why(tmp_path: Path) -> None:
    """qstat -x answers "Unknown Job Id" (unk.json/unk.err) for a job past its history: the
    job is UNKNOWN, never done, nothing is settled, and the user reads why."""
    store = JobStore(tmp_path / "jobs.db")

    def answer(argv: list[str]) -> RunResult:
        if argv[0] == "qsub":
            return RunResult(tuple(argv), 0, "999.vm\n", "")
        return RunResult(tuple(argv), 153, captured("unk.json"), captured("unk.err"))

    tr = Scripted(answer)
    job = submit(tr, store, tmp_path, "gone")
    [rec] = following.refresh(store.recent(), store, tr)
    assert rec.job_id == job and rec.state == "UNKNOWN"
    assert "PBS no longer knows this job" in rec.detail
    assert next(r for r in Ledger().rows() if r["ref"] == job)["actual_e4"] is None


# -- arrays ----------------------------------------------------------------------------------

def test_an_array_is_read_from_its_subjobs() -> None:
    assert PBS.status_argv(["6[].vm"]) == ["qstat", "-x", "-t", "-f", "-F", "json", "6[].vm"]
    got = status("c-t.json", "6[].vm")["6[].vm"]
    assert got.state is JobState.COMPLETED and got.exit_code == 0
    assert got.task_elapsed == (5.0, 5.0, 5.0) and got.final_usage


def failed_task_capture() -> str:
    """c-t.json with subjob 1 changed to how PBS records a task that exited 3 (b.json:
    substate 93, Exit_status 3). The parent keeps Exit_status 0, as PBS left it: it copies
    the exit status of whichever subjob changed state last."""
    data = json.loads(captured("c-t.json"))
    data["Jobs"]["6[1].vm"].update(substate=93, Exit_status=3)
    assert data["Jobs"]["6[].vm"]["Exit_status"] == 0
    return json.dumps(data)


def test_an_array_with_one_failed_task_is_failed_and_says_which() -> None:
    got = PBS.parse_status(Output(failed_task_capture(), "", 0), ["6[].vm"])["6[].vm"]
    assert got.state is JobState.FAILED and got.exit_code == 3
    assert "1 of 3 tasks did not complete: task 1 FAILED (exit 3)" in got.detail


def test_the_array_parent_alone_is_not_taken_for_the_outcome() -> None:
    # c.json: asked without -t, PBS shows the parent only, Exit_status 0 whatever the tasks did
    got = status("c.json", "6[].vm")["6[].vm"]
    assert got.state is JobState.UNKNOWN and not got.final_usage
    assert "none of the array's tasks" in got.detail


def test_an_array_still_running_is_running_and_not_final() -> None:
    data = json.loads(captured("c-t.json"))
    data["Jobs"]["6[].vm"]["job_state"] = "B"                      # PBS: array has begun
    data["Jobs"]["6[3].vm"].update(job_state="R", substate=42)      # task 3 still running
    del data["Jobs"]["6[3].vm"]["Exit_status"]
    got = PBS.parse_status(Output(json.dumps(data), "", 0), ["6[].vm"])["6[].vm"]
    assert got.state is JobState.RUNNING and not got.final_usage
    assert got.detail == "tasks: 2 COMPLETED, 1 RUNNING"       # per-task state, in short


# -- through the service: status, ledger, re-asking ------------------------------------------

def qstat_answer(by_id: dict[str, str], forgotten: tuple[str, ...] = ()
                 ) -> Callable[[list[str]], RunResult]:
    """qsub prints the next id; qstat with one id answers with that id's capture, and with
    none with every job the server holds (the captures' jobs together, less ``forgotten``:
    HANDMADE_MERGED_ANSWER, the no-id answer built from the per-id captures)."""
    ids = iter(by_id)

    def answer(argv: list[str]) -> RunResult:
        if argv[0] == "qsub":
            return RunResult(tuple(argv), 0, next(ids) + "\n", "")
        assert argv[0] == "qstat" and argv[:6] == ["qstat", "-x", "-t", "-f", "-F", "json"]
        if len(argv) == 7:
            return RunResult(tuple(argv), 0, by_id[argv[6]], "")
        merged: dict[str, Any] = {}
        for job, text in by_id.items():
            if job not in forgotten:
                merged.update(json.loads(text)["Jobs"])
        return RunResult(tuple(argv), 0, json.dumps({"Jobs": merged}), "")
    return answer


ABCI3 = {"cluster": "abci3", "resource": "rt_HF", "walltime": "0:05:00", "group": "gaa50000",
         "command": ["true"]}


def submit(tr: Scripted, store: JobStore, tmp_path: Path, name: str,
           **more: Any) -> str:
    plan = plan_job(*parse_spec({**ABCI3, "name": name, **more}))
    job_id = submitting.submit(plan, store, tr, submit_dir=str(tmp_path)).job_id
    assert job_id is not None
    return job_id


def rate_for(seconds: float, units: int = 1) -> Decimal:
    """ABCI's formula at the abci3 profile's rt_HF spot price, one node."""
    import datetime as dt
    q = quote(load_profile("abci3"), "rt_HF", "spot", dt.date.today())
    return job_points(q, units, seconds)


def test_missing_ids_are_asked_for_again_and_every_job_is_settled(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    tr = Scripted(qstat_answer({"10.vm": captured("d-depend.json"),
                                "11.vm": captured("multi.json")}, forgotten=("11.vm",)))
    first = submit(tr, store, tmp_path, "firstbad")
    second = submit(tr, store, tmp_path, "afterbad", depends_on=[first])
    got = {r.job_id: r for r in following.refresh(store.recent(), store, tr)}
    qstats = [c for c in tr.calls if c[0] == "qstat"]
    # several jobs: one query for all (no ids: OpenPBS's JSON answers for one id only);
    # a job missing from that answer is asked for by its id once more
    assert len(qstats) == 2 and qstats[0][6:] == [] and qstats[1][6:] == ["11.vm"]
    assert got[first].state == "FAILED" and got[first].exit_code == 5
    assert got[second].state == "CANCELLED" and "afterok:10.vm" in got[second].detail
    ledger = {r["ref"]: r for r in Ledger().rows()}
    assert Decimal(ledger[first]["actual_e4"]) / 10000 == rate_for(1)
    assert ledger[second]["actual_e4"] == 0 and ledger[second]["state"] == "CANCELLED"
    # both are final: another status asks nothing
    before = len(tr.calls)
    following.refresh(store.recent(), store, tr)
    assert len(tr.calls) == before


def test_one_query_when_nothing_is_missing(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    tr = Scripted(qstat_answer({"4.vm": captured("a.json")}))
    submit(tr, store, tmp_path, "hello")
    following.refresh(store.recent(), store, tr)
    assert [c[0] for c in tr.calls] == ["qsub", "qstat"]


def test_a_job_shorter_than_a_second_is_charged_the_minimum(tmp_path: Path) -> None:
    # a.json: the job ran (stime, exec_host) and PBS recorded walltime 00:00:00
    store = JobStore(tmp_path / "jobs.db")
    tr = Scripted(qstat_answer({"4.vm": captured("a.json")}))
    job = submit(tr, store, tmp_path, "hello")
    following.refresh(store.recent(), store, tr)
    [row] = Ledger().rows()
    assert row["ref"] == job and row["elapsed_s"] == 0
    # 7.5 points/h x 1.8 s / 3600 = 0.00375 -> 0.0038 (half-up at the 4th decimal)
    assert row["actual_e4"] == 38 == int(rate_for(1.8) * 10000)


def test_an_array_is_settled_from_its_subjobs(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    tr = Scripted(qstat_answer({"6[].vm": failed_task_capture()}))
    job = submit(tr, store, tmp_path, "arr", array="1-3")
    [rec] = following.refresh(store.recent(), store, tr)
    assert rec.state == "FAILED" and "task 1 FAILED (exit 3)" in rec.detail
    [row] = Ledger().rows()
    assert row["ref"] == job and row["tasks"] == 3
    assert Decimal(row["actual_e4"]) / 10000 == 3 * rate_for(5)     # three tasks of 5 s
    [group] = json.loads(cli("points", "--no-refresh", "--json").output)["groups"]
    assert Decimal(group["pending_estimates"]) == 0 and \
        Decimal(group["settled"]) == 3 * rate_for(5)


def test_a_walltime_overrun_is_charged_what_pbs_recorded(tmp_path: Path) -> None:
    # f.json: walltime 10 s, the mom let it run 39 s; the ledger keeps the real figure
    store = JobStore(tmp_path / "jobs.db")
    tr = Scripted(qstat_answer({"13.vm": captured("f.json")}))
    submit(tr, store, tmp_path, "wall", walltime=10)
    following.refresh(store.recent(), store, tr)
    [row] = Ledger().rows()
    assert row["elapsed_s"] == 39 and row["state"] == "TIMEOUT"
    assert row["actual_e4"] > row["estimate_e4"]
    assert Decimal(row["actual_e4"]) / 10000 == rate_for(39)


def test_cancel_then_status_through_the_cli_reports_cancelled(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    capture = copy.deepcopy(json.loads(captured("e.json")))
    tr = Scripted(qstat_answer({"12.vm": json.dumps(capture)}))
    job = submit(tr, store, tmp_path, "long", walltime="0:15:00")
    [rec] = following.refresh(store.recent(), store, tr)
    assert rec.state == "CANCELLED"
    [row] = Ledger().rows()
    assert row["ref"] == job and Decimal(row["actual_e4"]) / 10000 == rate_for(1.8)


@pytest.mark.parametrize("name", ["a.json", "b.json", "e.json", "f.json", "multi.json",
                                  "d-depend.json", "c-t.json"])
def test_every_finished_capture_is_final(name: str) -> None:
    jobs = json.loads(captured(name))["Jobs"]
    top = [k for k, r in jobs.items() if not r.get("array_id")]
    for job_id, st in PBS.parse_status(Output(captured(name), "", 0), top).items():
        assert st.state.terminal and st.final_usage, (job_id, st)


def test_logs_of_a_running_pbs_job_say_where_output_goes(tmp_path: Path) -> None:
    """ABCI 3.0's guide: the -o file is created after the job completes. A running job's
    missing log says so, and how to read it live (-k oe), instead of 'not started'."""
    from abcitrain.errors import FileMissing, TransportError

    running = json.loads((DATA / "samples" / "pbs" /
                          "qstat-x-f-F-json-running-metacentrum.json").read_text())
    running["Jobs"] = {"4.vm": next(iter(running["Jobs"].values()))}   # the captured record

    class NoFileYet(Scripted):
        def read_text(self, path: str) -> str:
            raise FileMissing(f"{path} does not exist (yet)")

    store = JobStore(tmp_path / "jobs.db")
    tr = NoFileYet(qstat_answer({"4.vm": json.dumps(running)}))
    job = submit(tr, store, tmp_path, "live")
    with pytest.raises(TransportError) as info:
        following.logs(job, store, transport=tr)
    assert "when it ends" in str(info.value) and "-k oe" in str(info.value)


def test_logs_of_an_ended_job_while_the_host_is_unreachable_say_so(tmp_path: Path) -> None:
    """Not "the output was deleted or moved": the login host did not answer."""
    from abcitrain.errors import TransportError

    class Unreachable(Scripted):
        def read_text(self, path: str) -> str:
            raise TransportError("cannot connect to login (127.0.0.1:2222): Connection refused")

    store = JobStore(tmp_path / "jobs.db")
    tr = Unreachable(qstat_answer({"4.vm": captured("a.json")}))
    job = submit(tr, store, tmp_path, "done")
    following.refresh(store.recent(), store, tr)               # it ended: COMPLETED
    with pytest.raises(TransportError) as info:
        following.logs(job, store, transport=tr)
    assert "cannot connect to login" in str(info.value)
    assert "deleted or moved" not in str(info.value)


def test_a_lost_submission_is_found_by_its_script_in_a_replayed_qstat_answer() -> None:
    """After a lost connection, the job a script made is found in `qstat -x -f -F json`'s
    Submit_arguments (live answers about abcitrain's own jobs, each from its own script)."""
    for name in ("a.json", "d-depend.json", "multi.json", "c-t.json"):
        text = captured(name)
        found = PBS.parse_submitted(Output(text, "", 0))
        jobs = json.loads(text)["Jobs"]
        assert found and set(found.values()) <= set(jobs), name
        for script, job_id in found.items():
            assert jobs[job_id]["Submit_arguments"].split()[-1] == script
            assert script.startswith("/home/user1/work/.abcitrain/scripts/")
    assert PBS.submitted_argv() == ["qstat", "-x", "-f", "-F", "json"]
    assert PBS.parse_submitted(Output("not json", "", 0)) == {}
