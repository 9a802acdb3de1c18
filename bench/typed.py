"""`abcitrain ...` as a user types it, for the benchmarks that time the CLI as a new process.

The console script pip installs beside the Python (``.venv/bin/abcitrain``) imports
abcitrain.cli and calls it. ``python -m abcitrain.cli`` goes through runpy first, which no
user's `abcitrain` does (0.4-0.9 ms of a ~135 ms start here, in two runs of 21); it is used
only where no console script is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path


def abcitrain_argv() -> list[str]:
    """The argv prefix that runs abcitrain's CLI as typed."""
    script = Path(sys.executable).with_name("abcitrain")
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "abcitrain.cli"]
