"""Broken state files, a job id that must never be lost, and the last-resort handler.

The job store and the ledger are real SQLite files; the damage is real too (garbage bytes, a
real database cut short, a 0-byte file, a folder in the file's place).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from conftest import DATA, Replay, cli

from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec
from abcitrain.batch.store import JobStore
from abcitrain.points.ledger import Ledger
from abcitrain.service import poll, submitting
from abcitrain.transport import RunResult


def _data() -> Path:
    return Path(os.environ["ABCITRAIN_DATA_DIR"])


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 100)


def _cut_short(path: Path) -> None:
    """A real database of this kind, cut to its first 2 KB (a crash mid-copy)."""
    if path.name == "ledger.db":
        Ledger(path)
    else:
        JobStore(path)
    with sqlite3.connect(path) as conn:      # enough rows that the cut lands in data pages
        conn.execute("CREATE TABLE filler (x TEXT)")
        conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,)] * 200)
    path.write_bytes(path.read_bytes()[:2048])
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)


def _empty(path: Path) -> None:
    path.write_bytes(b"")
    old = time.time() - 3600
    os.utime(path, (old, old))


def _folder(path: Path) -> None:
    path.mkdir()


DAMAGE = {"garbage": _garbage, "cut short": _cut_short, "empty": _empty, "folder": _folder}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize(("kind", "file", "commands"), [
    ("jobs", "abcitrain.db", [["status"], ["logs", "7"], ["cancel", "7"],
                              ["submit", "job.yaml"]]),
    ("ledger", "ledger.db", [["points"], ["points", "--json"]]),
])
def test_a_broken_state_file_is_named_with_the_way_out(damage: str, kind: str, file: str,
                                                       commands: list[list[str]],
                                                       tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(yaml.safe_dump({
        "name": "t", "cluster": "local", "resource": "cpu", "walltime": 60,
        "command": ["touch", "ran"]}))
    _data().mkdir(parents=True, exist_ok=True)
    path = _data() / file
    DAMAGE[damage](path)
    for args in commands:
        result = cli(*args, ok=None)
        assert result.exit_code == 1, (args, result.output)
        assert str(path) in result.output and f"abcitrain move-aside {kind}" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "ran").exists()          # nothing was submitted
    # the way out: moved aside, never deleted; the next command starts afresh
    out = cli("move-aside", kind).output
    assert "broken-" in out and not path.exists()
    [aside] = [p for p in _data().iterdir() if p.name.startswith(f"{file}.broken-")
               and not p.name.endswith(("-wal", "-shm"))]
    assert aside.is_dir() == (damage == "folder")
    cli(*commands[0])


def test_a_bad_journal_mode_is_refused_before_it_reaches_a_pragma(
        monkeypatch: pytest.MonkeyPatch) -> None:
    Ledger()                                       # one exists, so points opens it
    monkeypatch.setenv("ABCITRAIN_LEDGER_JOURNAL", "wal; DROP TABLE charges")
    result = cli("points", ok=None)
    assert result.exit_code == 2 and "ABCITRAIN_LEDGER_JOURNAL" in result.output


def test_a_data_dir_that_is_a_file_is_named(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("ABCITRAIN_DATA_DIR", str(tmp_path / "afile"))
    result = cli("status", ok=None)
    assert result.exit_code == 2 and "is a file" in result.output
    assert "Traceback" not in result.output


def test_a_job_the_scheduler_accepted_is_never_lost(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger is damaged while qsub runs (it was sound when checked before): the id is
    returned and recorded in the job store, and what was not recorded is said (PBS's answer
    is a captured qsub)."""
    ledger = tmp_path / "ledger.db"
    monkeypatch.setenv("ABCITRAIN_LEDGER", str(ledger))
    qsub = (DATA / "samples" / "pbs" / "qsub.txt").read_text()

    class Accepting(Replay):
        def run(self, argv: Sequence[str], cwd: str | None = None,
                timeout: float | None = None) -> RunResult:
            _garbage(ledger)                      # another process clobbers it meanwhile
            return super().run(argv, cwd, timeout)

        def write_text(self, path: str, text: str, mode: int = 0o644) -> None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)

    tr = Accepting({("qsub",): (0, qsub)})
    plan = plan_job(*parse_spec({"name": "t", "cluster": "abci3", "resource": "rt_HF",
                                 "walltime": "1:00:00", "group": "gaa50000",
                                 "command": ["true"]}))
    store = JobStore(tmp_path / "jobs.db")
    sub = submitting.submit(plan, store, tr, submit_dir=str(tmp_path))
    assert sub.job_id == "1234.pbs1" and [c[0] for c in tr.calls] == ["qsub"]
    [note] = sub.unrecorded
    assert "points ledger" in note and str(ledger) in note
    assert [r.job_id for r in store.recent()] == ["1234.pbs1"]


def test_the_cli_prints_the_id_and_exits_1_when_recording_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real local job with prices (a project profile): writing its charge fails once the
    local scheduler has it (a disk error, simulated at the ledger's write); the CLI says so
    with its id and the job is in the store."""
    clusters = tmp_path / ".abcitrain" / "clusters"
    clusters.mkdir(parents=True)
    (clusters / "priced.yaml").write_text(yaml.safe_dump({
        "extends": "local", "tariffs": {"services": [{"from": "2020-01-01", "spot": 1,
                                                      "on-demand": 1}],
                                        "types": {"cpu": [{"from": "2020-01-01",
                                                           "rate": 1}]}}}))
    (tmp_path / "job.yaml").write_text(yaml.safe_dump({
        "name": "t", "cluster": "priced", "resource": "cpu", "walltime": 60,
        "command": ["true"]}))
    def disk_error(self: Ledger, charge: object) -> bool:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Ledger, "record", disk_error)
    result = cli("submit", "job.yaml", ok=None)
    assert result.exit_code == 1, result.output
    job = result.output.split("submitted priced job ")[1].split()[0]
    assert f"job {job} IS submitted" in result.output and "do not submit it again" in \
        result.output
    assert JobStore().find(job)


def test_an_unforeseen_error_is_one_line_and_a_saved_trace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("an internal slip")

    monkeypatch.setattr(poll, "poll_once", boom)
    JobStore()                                   # one store, so status asks for a poll
    result = cli("status", ok=None)
    assert result.exit_code == 1
    assert "abcitrain failed unexpectedly: ZeroDivisionError: an internal slip" in \
        result.output and "Traceback" not in result.output
    where = result.output.split("The full trace is in ")[1].split(";")[0]
    assert "ZeroDivisionError" in Path(where).read_text() and "Traceback" in \
        Path(where).read_text()


def test_reading_commands_create_no_state(tmp_path: Path) -> None:
    """check, status and points on a fresh machine write nothing: no job store, no ledger,
    not even abcitrain's data folder."""
    (tmp_path / "job.yaml").write_text(yaml.safe_dump({
        "name": "t", "cluster": "local", "resource": "cpu", "walltime": 60,
        "command": ["echo", "hi"]}))
    cli("check", "job.yaml")
    cli("status")
    cli("points")
    cli("points", "--json")
    assert not _data().exists()
