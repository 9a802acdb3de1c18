"""Stopping a process a test started: SIGTERM (a server's clean shutdown), then SIGKILL if it
has not ended within the grace period; only that process, by its PID."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen[str], grace_s: float = 30) -> int:
    """End ``proc`` and return its exit status."""
    proc.terminate()
    try:
        return proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
