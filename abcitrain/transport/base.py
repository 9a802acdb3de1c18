"""The one seam through which abcitrain runs commands and moves files.

A transport runs an argv list (never a shell string) and reads or writes files on the host
where the scheduler lives. ``LocalTransport`` is this machine (a login node, or the local
cluster); an SSH transport from a laptop plugs in here with the same three methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RunResult:
    """What a command did."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Transport(Protocol):
    """Runs commands and moves files on the scheduler's host."""

    def run(self, argv: Sequence[str], cwd: str | None = None,
            timeout: float | None = None) -> RunResult:
        """Run ``argv`` and capture its output; never raises for a non-zero exit."""
        ...

    def write_text(self, path: str, text: str, mode: int = 0o644) -> None:
        """Create or replace a text file (and its folders)."""
        ...

    def read_text(self, path: str) -> str:
        """Read a text file."""
        ...
