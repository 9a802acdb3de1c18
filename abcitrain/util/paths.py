"""Where abcitrain keeps its state (the job store, the ledger, the local spool)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Where abcitrain keeps its state: $ABCITRAIN_DATA_DIR, else the user data folder."""
    env = os.environ.get("ABCITRAIN_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("abcitrain"))


def private_cache_dir(name: str) -> Path | None:
    """The folder ``name`` in this user's cache folder, made private (0700); None where it
    cannot be made, or where it is not this user's alone: what is cached there is loaded
    as code (compiled templates) or names code to import (backends), so only a folder
    nobody else can write is trusted."""
    from platformdirs import user_cache_dir

    folder = Path(user_cache_dir("abcitrain")) / name
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = folder.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        return None
    return folder
