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
