"""The one way abcitrain opens its SQLite files and migrates their schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def connect(path: Path, journal: str = "WAL", timeout_s: int = 60,
            cache_kib: int | None = None) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode with a busy timeout; rows readable by column name."""
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode={journal}")
        conn.execute(f"PRAGMA busy_timeout={timeout_s * 1000}")
        conn.execute("PRAGMA synchronous=FULL")
        if cache_kib:
            conn.execute(f"PRAGMA cache_size=-{cache_kib}")
        conn.row_factory = sqlite3.Row
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error: all of it lands, or none."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, migrations: Sequence[str]) -> None:
    """Apply the migrations past the file's ``user_version``, in one transaction."""
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, sql in enumerate(migrations[version:], start=version + 1):
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
