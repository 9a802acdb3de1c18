"""The local record of submitted jobs (SQLite), so ``abcitrain status`` can list mine.

One file per user by default (``$ABCITRAIN_DATA_DIR/abcitrain.db``, else the platform's user
data folder). WAL mode and a busy timeout let several abcitrain processes write at once; the
schema carries a version and is migrated forward on open.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, Problem
from ..util import sqlitedb
from ..util.paths import data_dir

MIGRATIONS: Sequence[str] = (
    # 1: submitted jobs and what abcitrain last learnt about them
    """
    CREATE TABLE jobs (
        cluster TEXT NOT NULL,
        job_id TEXT NOT NULL,
        scheduler TEXT NOT NULL,
        name TEXT NOT NULL,
        submitted_at REAL NOT NULL,
        submit_dir TEXT NOT NULL,
        script_path TEXT NOT NULL,
        output TEXT NOT NULL,
        array_tasks TEXT,
        state TEXT NOT NULL DEFAULT 'PENDING',
        exit_code INTEGER,
        elapsed_s INTEGER,
        detail TEXT NOT NULL DEFAULT '',
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        spec_json TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (cluster, job_id)
    );
    CREATE INDEX jobs_submitted ON jobs (submitted_at);
    """,
    # 2: when the user cancelled (a job Grid Engine deleted before it started leaves no
    # accounting record: only the time since the cancel tells it from a record still coming)
    "ALTER TABLE jobs ADD COLUMN cancelled_at REAL",
    # 3: submissions under way: written before the scheduler's submit command runs and
    # removed once its job is recorded; one left behind (the answer was lost) is looked for
    # in the scheduler before the same job is submitted again
    """
    CREATE TABLE pending (
        script_path TEXT PRIMARY KEY,
        cluster TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    # 4: when each cluster's scheduler was last asked about this user's jobs, by any of
    # their abcitrain processes (service.poll: one query per cluster per minimum interval)
    """
    CREATE TABLE polls (
        cluster TEXT PRIMARY KEY,
        polled_at REAL NOT NULL
    );
    """,
    # 5: each array task's last known state, exit code and index (JSON list)
    "ALTER TABLE jobs ADD COLUMN tasks_json TEXT",
)


@dataclass(frozen=True)
class JobRecord:
    """One submitted job as the store knows it."""

    cluster: str
    job_id: str
    scheduler: str
    name: str
    submitted_at: float
    submit_dir: str
    script_path: str
    output: str
    array_tasks: str | None
    state: str
    exit_code: int | None
    elapsed_s: int | None
    detail: str
    cancel_requested: bool
    spec: dict[str, Any]
    #: When abcitrain last learnt the job's state (seconds since the epoch).
    updated_at: float = 0.0
    #: When the user first asked to cancel it (seconds since the epoch), if they did.
    cancelled_at: float | None = None
    #: An array's tasks as last known: (index, state, exit code) each.
    tasks: tuple[tuple[str, str, int | None], ...] = ()


@dataclass(frozen=True)
class StateUpdate:
    """What the scheduler said about one job, to be stored (``JobStore.update_states``)."""

    cluster: str
    job_id: str
    state: str
    exit_code: int | None
    elapsed_s: int | None
    detail: str
    tasks: tuple[tuple[str, str, int | None], ...] = ()


class JobStore:
    """Submitted jobs in one SQLite file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / "abcitrain.db"
        if self.path.parent.is_file():
            raise InputError("abcitrain's data folder is a file", [Problem(
                str(self.path.parent), "is a file: point ABCITRAIN_DATA_DIR at a folder")])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    @classmethod
    def existing(cls, path: Path | None = None) -> JobStore | None:
        """The job store if it has been started, else None (reading must not create it)."""
        path = path or data_dir() / "abcitrain.db"
        # a data folder that is a file is an error to name, not an empty store
        return cls(path) if path.exists() or path.parent.is_file() else None

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection to the job database (autocommit: each statement is atomic)."""
        with sqlitedb.connect(self.path, timeout_s=30, kind="jobs") as conn:
            yield conn

    def _migrate(self) -> None:
        with self.connect() as conn:
            sqlitedb.migrate(conn, MIGRATIONS)

    def verify(self) -> None:
        """Raise StateFileError if the file is damaged anywhere (checked before a submit)."""
        with self.connect() as conn:
            sqlitedb.verify(conn, self.path, "jobs")

    def add(self, record: JobRecord) -> None:
        """Record a submission (idempotent per cluster and job id)."""
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO jobs (cluster, job_id, scheduler, name, submitted_at, submit_dir,"
                " script_path, output, array_tasks, state, detail, spec_json, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (cluster, job_id) DO NOTHING",
                (record.cluster, record.job_id, record.scheduler, record.name,
                 record.submitted_at, record.submit_dir, record.script_path, record.output,
                 record.array_tasks, record.state, record.detail, json.dumps(record.spec),
                 time.time()))

    def add_pending(self, script_path: str, cluster: str, digest: str) -> None:
        """Note a submission about to run (``digest``: what identifies the same job)."""
        with self.connect() as conn:
            conn.execute("INSERT OR REPLACE INTO pending VALUES (?,?,?,?)",
                         (script_path, cluster, digest, time.time()))

    def drop_pending(self, script_path: str) -> None:
        """Forget a submission that was recorded, or that never reached the scheduler."""
        with self.connect() as conn:
            conn.execute("DELETE FROM pending WHERE script_path = ?", (script_path,))

    def pending_for(self, cluster: str, digest: str, max_age_s: float = 86400) -> list[str]:
        """Script paths of unresolved submissions of the same job, newest first."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT script_path FROM pending WHERE cluster = ? AND digest = ? AND "
                "created_at > ? ORDER BY created_at DESC",
                (cluster, digest, time.time() - max_age_s)).fetchall()
        return [row[0] for row in rows]

    def update_state(self, cluster: str, job_id: str, state: str, exit_code: int | None,
                     elapsed_s: int | None, detail: str,
                     tasks: Sequence[tuple[str, str, int | None]] = ()) -> None:
        """Store what the scheduler last said about a job (and its tasks, when it named
        them: an answer that names none keeps the last known)."""
        self.update_states([StateUpdate(cluster, job_id, state, exit_code, elapsed_s, detail,
                                        tuple(tasks))])

    def update_states(self, updates: Sequence[StateUpdate]) -> None:
        """``update_state`` for many jobs in ONE transaction (a poll of 1,000 jobs would
        otherwise open and commit 1,000 times)."""
        if not updates:
            return
        now = time.time()
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "UPDATE jobs SET state=?, exit_code=COALESCE(?, exit_code),"
                " elapsed_s=COALESCE(?, elapsed_s), detail=?, updated_at=?,"
                " tasks_json=COALESCE(?, tasks_json) WHERE cluster=? AND job_id=?",
                [(u.state, u.exit_code, u.elapsed_s, u.detail, now,
                  json.dumps([list(t) for t in u.tasks]) if u.tasks else None, u.cluster,
                  u.job_id) for u in updates])
            conn.execute("COMMIT")

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], JobRecord]:
        """The recorded jobs among ``keys`` ((cluster, job id) each), in one read."""
        found: dict[tuple[str, str], JobRecord] = {}
        with self.connect() as conn:
            for start in range(0, len(keys), 400):      # SQLite's variable limit: 999+
                chunk = keys[start:start + 400]
                where = " OR ".join(["(cluster=? AND job_id=?)"] * len(chunk))
                args = [part for key in chunk for part in key]
                for row in conn.execute(f"SELECT * FROM jobs WHERE {where}", args):
                    rec = _record(row)
                    found[(rec.cluster, rec.job_id)] = rec
        return found

    def mark_cancel(self, cluster: str, job_id: str) -> None:
        """Remember that the user cancelled a job (accounting alone cannot always tell)."""
        with self.connect() as conn:
            now = time.time()
            conn.execute("UPDATE jobs SET cancel_requested=1, updated_at=?,"
                         " cancelled_at=COALESCE(cancelled_at, ?) WHERE cluster=? AND job_id=?",
                         (now, now, cluster, job_id))

    def claim_poll(self, cluster: str, min_interval_s: float, now: float | None = None
                   ) -> bool:
        """Take the right to ask ``cluster``'s scheduler now: True unless one of this user's
        processes asked it less than ``min_interval_s`` ago (one atomic statement, so of
        two processes asking at once exactly one wins)."""
        now = time.time() if now is None else now
        with self.connect() as conn:
            cur = conn.execute(
                "INSERT INTO polls (cluster, polled_at) VALUES (?, ?)"
                " ON CONFLICT (cluster) DO UPDATE SET polled_at = excluded.polled_at"
                " WHERE polls.polled_at <= ? OR polls.polled_at > ?",
                (cluster, now, now - min_interval_s, now))
            return cur.rowcount == 1

    def get(self, cluster: str, job_id: str) -> JobRecord | None:
        """One job by its key."""
        found = self.find(job_id, cluster)
        return found[0] if found else None

    def find(self, job_id: str, cluster: str | None = None) -> list[JobRecord]:
        """Jobs with this id (on one cluster, or on any)."""
        sql = "SELECT * FROM jobs WHERE job_id=?"
        args: tuple[str, ...] = (job_id,)
        if cluster:
            sql += " AND cluster=?"
            args += (cluster,)
        with self.connect() as conn:
            return [_record(r) for r in conn.execute(sql, args)]

    def recent(self, limit: int = 20, cluster: str | None = None,
               active_only: bool = False) -> list[JobRecord]:
        """The latest jobs, newest first."""
        sql = "SELECT * FROM jobs"
        where, args = [], []
        if cluster:
            where.append("cluster=?")
            args.append(cluster)
        if active_only:
            where.append("state NOT IN ('COMPLETED','FAILED','CANCELLED','TIMEOUT')")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY submitted_at DESC LIMIT ?"
        with self.connect() as conn:
            return [_record(r) for r in conn.execute(sql, (*args, limit))]


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        cluster=row["cluster"], job_id=row["job_id"], scheduler=row["scheduler"],
        name=row["name"], submitted_at=row["submitted_at"], submit_dir=row["submit_dir"],
        script_path=row["script_path"], output=row["output"], array_tasks=row["array_tasks"],
        state=row["state"], exit_code=row["exit_code"], elapsed_s=row["elapsed_s"],
        detail=row["detail"], cancel_requested=bool(row["cancel_requested"]),
        spec=json.loads(row["spec_json"]), updated_at=row["updated_at"],
        cancelled_at=row["cancelled_at"],
        tasks=tuple((str(i), str(s), e) for i, s, e in json.loads(row["tasks_json"] or "[]")))
