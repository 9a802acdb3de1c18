"""Grid Engine parsing against CAPTURED ABCI 2.0 outputs (its Univa Grid Engine and qsub
wrapper are retired and cannot run here); the live-cluster tests use Son of Grid Engine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import DATA, Replay

from abcitrain.backends.base import Output
from abcitrain.backends.uge import GridEngineBackend, parse_qacct
from abcitrain.batch.store import JobRecord, JobStore
from abcitrain.domain import JobState
from abcitrain.service import following

SAMPLES = DATA / "samples" / "uge"
UGE = GridEngineBackend()


def test_abci_qsub_message_gives_the_job_id() -> None:
    text = (SAMPLES / "qsub.txt").read_text()
    assert UGE.parse_submit(Output(text, "", 0)) == "12345"
    assert UGE.parse_submit(Output("3.1-3:1\n", "", 0)) == "3"     # qsub -terse, an array


def test_abci_qacct_record() -> None:
    text = (SAMPLES / "qacct-j.txt").read_text()
    [record] = parse_qacct(text)
    assert record["jobnumber"] == "12345" and record["granted_pe"] == "perack17"
    got = UGE.parse_accounting([Output(text, "", 0)], ["12345"])
    assert got["12345"].state is JobState.COMPLETED and got["12345"].exit_code == 0


@pytest.mark.parametrize(("line", "meaning"), [
    (1, "option value was refused"), (2, "not one you belong to"),
    (3, "fewer points left"), (4, "needs a resource type"), (5, "over the limit")])
def test_abci_qsub_errors_are_explained(line: int, meaning: str) -> None:
    text = (SAMPLES / "qsub-errors.txt").read_text().splitlines()[line]
    assert meaning in (UGE.explain(text) or "")


def test_abci_qdel_output_is_a_cancel_request() -> None:
    store = JobStore()
    store.add(JobRecord("abci2", "12345", "uge", "train", time.time(), ".", "run.sh", "o.txt",
                        None, "RUNNING", None, None, "", False, {}))
    replay = Replay({("qdel",): (0, (SAMPLES / "qdel.txt").read_text())})
    [done] = following.cancel(["12345"], store, transport=replay)
    assert replay.calls == [("qdel", "12345")]
    assert done.job_id == "12345"
    record = store.get("abci2", "12345")
    assert record is not None and record.cancel_requested


# HAND-MADE: no captured qstat -xml shows a state Grid Engine never prints; this one invents
# the state 'zz' to check that an unknown state is UNKNOWN with a warning, never "done".
HANDMADE_QSTAT_XML_UNKNOWN_STATE = (
    "<job_info><queue_info><job_list state='running'><JB_job_number>7</JB_job_number>"
    "<state>zz</state></job_list></queue_info></job_info>")


def test_an_unknown_state_is_unknown_with_a_warning() -> None:
    got = UGE.parse_status(Output(HANDMADE_QSTAT_XML_UNKNOWN_STATE, "", 0), ["7"])
    assert got["7"].state is JobState.UNKNOWN and "unknown scheduler state 'zz'" in \
        got["7"].detail


@pytest.mark.parametrize(("text", "iso"), [
    ("09/01/2020 16:41:37.736", "2020-09-01T16:41:37.736"),      # Univa (ABCI 2.0)
    ("Sun Nov  1 00:00:00 2026", "2026-11-01T00:00:00"),          # Son of Grid Engine ctime
    ("Mon Nov 30 16:41:37 2026", "2026-11-30T16:41:37"),
    ("13/01/2020 00:00:00", None), ("Foo Bar 99 00:00:00 2026", None), ("", None)])
def test_qacct_dates_in_both_grid_engines_forms(text: str, iso: str | None) -> None:
    from abcitrain.points.accounting import qacct_time

    assert qacct_time(text) == iso


def test_a_skipped_qacct_record_names_where_and_which_field(tmp_path: Path) -> None:
    from conftest import cli

    text = (DATA / "samples" / "uge" / "qacct-j.txt").read_text()
    bad = text.replace("qsub_time    ", "qsub_time    garbled ", 1)
    (tmp_path / "q.txt").write_text(bad)
    out = cli("points", "import", str(tmp_path / "q.txt"), "--format", "qacct",
              "--cluster", "abci2").output
    assert "skipped 1: unreadable qsub_time (first at record 1 (job " in out, out
