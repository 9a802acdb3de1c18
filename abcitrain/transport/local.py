"""``LocalTransport``: commands and files on this machine (a login node, or the local cluster)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import FileMissing, ProgramMissing, TransportError
from .base import RunResult


class LocalTransport:
    """Runs commands on this machine with subprocess, without a shell."""

    def run(self, argv: Sequence[str], cwd: str | None = None,
            timeout: float | None = 120) -> RunResult:
        """Run ``argv`` here."""
        try:
            proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True,
                                  timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise ProgramMissing(
                f"`{argv[0]}` is not installed or not on PATH here. Run abcitrain on the "
                "cluster's login node, or check the cluster name in the job spec.") from None
        except subprocess.TimeoutExpired:
            raise TransportError(f"`{' '.join(argv[:2])}` did not answer within {timeout} s; "
                                 "the scheduler may be overloaded, try again later") from None
        return RunResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)

    def write_text(self, path: str, text: str, mode: int = 0o644) -> None:
        """Write a file here, atomically."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(mode)
        tmp.replace(target)

    def read_text(self, path: str) -> str:
        """Read a file here."""
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise FileMissing(f"{path} does not exist (yet): the job may not have "
                              "started writing output") from None
