"""The one way abcitrain opens its SQLite files and migrates their schema.

A file that is not a database, is damaged, or is a folder raises ``StateFileError`` naming
the file and the way out, never a traceback; a busy (locked) file is not called broken.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import NotWritable, StateFileError

#: A file this old with 0 bytes was truncated: abcitrain writes the schema on creation.
EMPTY_GRACE_S = 10


def check_file(path: Path, kind: str) -> None:
    """Refuse a path that cannot be abcitrain's database before SQLite opens it (SQLite
    would take a 0-byte file for an empty database: for a file abcitrain wrote, that is a
    truncation, not "no jobs")."""
    if path.is_dir():
        raise StateFileError(str(path), "is a folder, not a database file", kind)
    if path.exists():
        st = path.stat()
        if st.st_size == 0 and time.time() - st.st_mtime > EMPTY_GRACE_S:
            raise StateFileError(str(path), "is empty (0 bytes): it was truncated", kind)


def writable(path: Path) -> bool:
    """Whether SQLite can write ``path``: the file, and its folder (WAL's side files)."""
    folder = path.parent
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


@contextmanager
def guarded(path: Path, kind: str) -> Iterator[None]:
    """Turn SQLite's word that a file is damaged into StateFileError."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        # a read-only file or folder is not damage either: say so, not "move it aside"
        if "readonly" in str(exc) or ("unable to open" in str(exc) and not writable(path)):
            raise NotWritable(str(path), "it (or its folder) is read-only") from None
        # a folder in the file's place, an unreadable disk; busy or locked is not damage, and
        # a statement abcitrain got wrong is a bug to report, not the file's fault
        if not any(w in str(exc) for w in ("unable to open", "disk I/O", "malformed",
                                            "not a database")):
            raise
        raise StateFileError(str(path), f"cannot be used: {exc}", kind) from None
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError:
            raise                      # IntegrityError, ProgrammingError: abcitrain's bugs
        raise StateFileError(str(path), f"is damaged or not an abcitrain file: {exc}",
                             kind) from None


@contextmanager
def connect(path: Path, journal: str = "WAL", timeout_s: int = 60,
            cache_kib: int | None = None, kind: str = "database"
            ) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode with a busy timeout; rows readable by column name.
    A broken file (``kind`` names it: "jobs", "ledger") raises StateFileError, also when the
    damage shows only while the caller reads."""
    check_file(path, kind)
    with guarded(path, kind):
        conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
        with _closing(conn):
            conn.execute(f"PRAGMA journal_mode={journal}")
            conn.execute(f"PRAGMA busy_timeout={timeout_s * 1000}")
            conn.execute("PRAGMA synchronous=FULL")
            if cache_kib:
                conn.execute(f"PRAGMA cache_size=-{cache_kib}")
            conn.row_factory = sqlite3.Row
            yield conn


@contextmanager
def _closing(conn: sqlite3.Connection) -> Iterator[None]:
    try:
        yield
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


def verify(conn: sqlite3.Connection, path: Path, kind: str) -> None:
    """Read every page (``PRAGMA quick_check``): damage that opening the file does not show
    is found before abcitrain relies on writing to it (before a job is submitted)."""
    rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    if rows != ["ok"]:
        raise StateFileError(str(path), f"is damaged: {'; '.join(rows[:3])}", kind)
