"""The points ledger: one SQLite file of charges, estimates and actuals, and synced balances.

Where it lives: ``$ABCITRAIN_LEDGER`` if set (a team points every member at one shared file),
else ``ledger.db`` in abcitrain's data folder. Points are stored as integer ten-thousandths,
so sums are exact. Every write is one transaction (``BEGIN IMMEDIATE``) with a busy timeout:
concurrent writers wait rather than lose rows, and a writer killed mid-transaction leaves the
file as it was before. There is no index beyond the primary key: a secondary one put a
1,000,000-record import over its benchmark target, and a group's sum scans the table instead
(measured: 0.18 s at a million rows; a team's ledger holds thousands). The journal is WAL on
local disk; set ``ABCITRAIN_LEDGER_JOURNAL=delete``
for a file on a network file system, where WAL's shared memory does not work.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import InputError, Problem
from ..util import sqlitedb
from ..util.paths import data_dir
from .tariffs import Quote, job_points, to_e4

MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE charges (
        cluster TEXT NOT NULL,
        ref TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('job', 'reservation')),
        grp TEXT NOT NULL DEFAULT '',
        usr TEXT NOT NULL,
        name TEXT NOT NULL,
        submitted_at TEXT NOT NULL,
        service TEXT NOT NULL,
        resource TEXT NOT NULL,
        units INTEGER NOT NULL,
        tasks INTEGER NOT NULL DEFAULT 1,
        requested_s INTEGER NOT NULL,
        type_rate TEXT NOT NULL,
        service_coeff TEXT NOT NULL,
        minimum_s TEXT NOT NULL,
        tariff_from TEXT NOT NULL,
        estimate_e4 INTEGER NOT NULL,
        actual_e4 INTEGER,
        elapsed_s REAL,
        state TEXT NOT NULL DEFAULT 'PENDING',
        settled_at TEXT,
        refund_e4 INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL DEFAULT 'submit',
        PRIMARY KEY (cluster, ref, kind)
    );

    CREATE TABLE balances (
        cluster TEXT NOT NULL,
        grp TEXT NOT NULL,
        point_e4 INTEGER NOT NULL,
        used_e4 INTEGER NOT NULL,
        synced_at TEXT NOT NULL,
        PRIMARY KEY (cluster, grp)
    );
    """,
)


JOURNALS = ("WAL", "DELETE", "TRUNCATE", "PERSIST")

INSERT_COLUMNS = ("cluster", "ref", "kind", "grp", "usr", "name", "submitted_at", "service",
                  "resource", "units", "tasks", "requested_s", "type_rate", "service_coeff",
                  "minimum_s", "tariff_from", "estimate_e4", "source", "actual_e4",
                  "elapsed_s", "state", "settled_at")


def ledger_path() -> Path:
    """The ledger file: $ABCITRAIN_LEDGER, else the data folder's ledger.db."""
    env = os.environ.get("ABCITRAIN_LEDGER")
    return Path(env) if env else data_dir() / "ledger.db"


def now_iso() -> str:
    """The current time, UTC, ISO 8601."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Charge:
    """A job or reservation as the ledger records it at submission or booking."""

    cluster: str
    ref: str
    kind: str
    grp: str
    usr: str
    name: str
    submitted_at: str
    quote: Quote
    units: int
    tasks: int
    requested_s: int
    estimate: Decimal
    source: str = "submit"
    #: Set when the record is already final (imported from accounting).
    actual: Decimal | None = None
    elapsed_s: float | None = None
    state: str = "PENDING"


class Ledger:
    """The points ledger in one SQLite file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or ledger_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.journal = os.environ.get("ABCITRAIN_LEDGER_JOURNAL", "wal").upper()
        if self.journal not in JOURNALS:
            # pasted into a PRAGMA: only SQLite's own words may pass
            raise InputError("ABCITRAIN_LEDGER_JOURNAL is not a journal mode", [Problem(
                "ABCITRAIN_LEDGER_JOURNAL", f"{self.journal[:40]!r}: use wal (local disk) or "
                "delete (a network file system)")])
        if self.path.parent.is_file():
            raise InputError("the ledger's folder is a file", [Problem(
                str(self.path.parent), "is a file: point ABCITRAIN_LEDGER or "
                "ABCITRAIN_DATA_DIR at a folder")])
        with self._connect() as conn:
            sqlitedb.migrate(conn, MIGRATIONS)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # index inserts of a big import thrash the default 2 MB page cache: 64 MiB
        with sqlitedb.connect(self.path, self.journal, cache_kib=65536, kind="ledger") as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands, or none of it."""
        with self._connect() as conn, sqlitedb.transaction(conn):
            yield conn

    def verify(self) -> None:
        """Raise StateFileError if the file is damaged anywhere (checked before a submit)."""
        with self._connect() as conn:
            sqlitedb.verify(conn, self.path, "ledger")

    def record(self, charge: Charge) -> bool:
        """Record a submission or booking; False if (cluster, ref, kind) was already there."""
        return self.record_many([charge]) == 1

    def record_many(self, charges: Iterable[Charge]) -> int:
        """Record many charges in one transaction; returns how many were new."""
        return self.insert_rows([(c.cluster, c.ref, c.kind, c.grp, c.usr, c.name, c.submitted_at,
                 c.quote.service, c.quote.resource, c.units, c.tasks, c.requested_s,
                 str(c.quote.type_rate), str(c.quote.service_coeff), str(c.quote.minimum_s),
                 c.quote.type_from.isoformat(), to_e4(c.estimate), c.source,
                 None if c.actual is None else to_e4(c.actual), c.elapsed_s, c.state,
                 None if c.actual is None else now_iso())
                for c in charges])

    def insert_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert rows in ``INSERT_COLUMNS`` order in one transaction; returns how many were
        new. ``record_many`` builds them from Charges; bulk imports build them directly."""
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany(
                f"INSERT INTO charges ({', '.join(INSERT_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(INSERT_COLUMNS))})"
                " ON CONFLICT (cluster, ref, kind) DO NOTHING", rows)
            return conn.total_changes - before

    def settle(self, cluster: str, ref: str, state: str,
               task_elapsed: Sequence[float]) -> Decimal | None:
        """Set a job's actual charge from accounting (once; later calls change nothing).

        ``task_elapsed`` lists every task that started, each charged at least the site's
        minimum even when it ran 0 s; an empty list (nothing ran) settles at zero."""
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM charges WHERE cluster=? AND ref=? AND kind='job'",
                               (cluster, ref)).fetchone()
            if row is None or row["actual_e4"] is not None:
                return None
            q = _quote_of(row)
            actual = sum((job_points(q, row["units"], e) for e in task_elapsed), Decimal(0))
            conn.execute("UPDATE charges SET actual_e4=?, elapsed_s=?, state=?, settled_at=?"
                         " WHERE cluster=? AND ref=? AND kind='job'",
                         (to_e4(actual), sum(task_elapsed), state, now_iso(), cluster, ref))
            return actual

    def refund(self, cluster: str, ref: str, amount: Decimal) -> None:
        """Record a refund against a charge (a cancelled reservation)."""
        with self._tx() as conn:
            conn.execute("UPDATE charges SET refund_e4=?, state='CANCELLED', settled_at=?"
                         " WHERE cluster=? AND ref=? AND kind='reservation'",
                         (to_e4(amount), now_iso(), cluster, ref))

    def get(self, cluster: str, ref: str, kind: str) -> dict[str, Any] | None:
        """One charge, or None."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM charges WHERE cluster=? AND ref=? AND kind=?",
                               (cluster, ref, kind)).fetchone()
            return dict(row) if row is not None else None

    def committed_e4(self, grp: str, usr: str | None = None) -> int:
        """Points taken from a group (or one user in it): actual once known, else estimate."""
        sql = ("SELECT COALESCE(SUM(COALESCE(actual_e4, estimate_e4) - refund_e4), 0)"
               " FROM charges WHERE grp=?")
        args: tuple[str, ...] = (grp,)
        if usr is not None:
            sql += " AND usr=?"
            args += (usr,)
        with self._connect() as conn:
            return int(conn.execute(sql, args).fetchone()[0])

    def pending_since_e4(self, grp: str, since: str) -> int:
        """Estimates of this group's unsettled jobs submitted after ``since``."""
        with self._connect() as conn:
            return int(conn.execute(
                "SELECT COALESCE(SUM(estimate_e4), 0) FROM charges WHERE grp=? AND"
                " actual_e4 IS NULL AND submitted_at > ?", (grp, since)).fetchone()[0])

    def set_balance(self, cluster: str, grp: str, point_e4: int, used_e4: int) -> None:
        """Store a group's real balance, as the cluster's show_point printed it."""
        with self._tx() as conn:
            conn.execute("INSERT INTO balances VALUES (?,?,?,?,?) ON CONFLICT (cluster, grp)"
                         " DO UPDATE SET point_e4=excluded.point_e4, used_e4=excluded.used_e4,"
                         " synced_at=excluded.synced_at",
                         (cluster, grp, point_e4, used_e4, now_iso()))

    def balance(self, grp: str) -> sqlite3.Row | None:
        """The latest synced balance of a group, if any."""
        with self._connect() as conn:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM balances WHERE grp=? ORDER BY synced_at DESC LIMIT 1",
                (grp,)).fetchone()
            return row

    def synced_points(self) -> dict[str, Decimal]:
        """Each group with a synced show_point balance -> its points (the allotment), the
        latest sync's."""
        with self._connect() as conn:
            rows = conn.execute("SELECT grp, point_e4 FROM balances ORDER BY synced_at"
                                ).fetchall()
        return {str(r["grp"]): Decimal(r["point_e4"]) / 10000 for r in rows}

    def rows(self, grp: str | None = None) -> list[dict[str, Any]]:
        """Every charge (of one group), oldest first."""
        sql = "SELECT * FROM charges"
        args: tuple[str, ...] = ()
        if grp is not None:
            sql += " WHERE grp=?"
            args = (grp,)
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(sql + " ORDER BY submitted_at", args)]

    def count(self) -> int:
        """How many charges the ledger holds."""
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM charges").fetchone()[0])


def _quote_of(row: sqlite3.Row) -> Quote:
    return Quote(resource=row["resource"], service=row["service"],
                 type_rate=Decimal(row["type_rate"]),
                 service_coeff=Decimal(row["service_coeff"]),
                 type_from=dt.date.fromisoformat(row["tariff_from"]),
                 service_from=dt.date.fromisoformat(row["tariff_from"]),
                 minimum_s=Decimal(row["minimum_s"]))
