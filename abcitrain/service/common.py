"""What every service module shares: the transport that reaches a cluster, the ledger if
one exists, and a scheduler refusal turned into the error the user sees."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import SchedulerError
from ..points.ledger import Ledger, ledger_path
from ..transport import LocalTransport, RunResult, Transport

#: Open SSH transports of this process by cluster: one connection serves a whole command,
#: however many submissions or queries it makes.
_OPEN: dict[str, Transport] = {}


def transport_for(cluster: str, project_dir: str | None = None) -> Transport:
    """The transport that reaches ``cluster``'s scheduler: this machine, or, when its
    profile says ``login: {ssh: HOST}``, the login node over SSH (HOST as ~/.ssh/config
    names it). ``login.mode``: ``auto`` (the default) uses SSH only where the scheduler's
    submit command is not installed (a laptop, not the login node itself); ``ssh`` always;
    ``local`` never. There ``project_dir`` is mirrored as ``WORKDIR/<its folder name>``
    (``login.workdir``, default ``abcitrain`` in the remote home): paths under it mean the
    same paths in the copy."""
    from ..profiles import load_profile

    profile = load_profile(cluster)
    login = profile.login
    destination = login.get("ssh")
    from .identity import scheduler_is_here

    if scheduler_is_here(profile):
        return SchedulerHere(profile)
    from ..transport.ssh import SshTransport

    ssh = _OPEN.get(cluster)
    if not isinstance(ssh, SshTransport):
        import atexit

        if not _OPEN:
            atexit.register(close_transports)
        ssh = _OPEN[cluster] = SshTransport(str(destination))
    if project_dir:
        # relative to the remote home; "~/" says the same (SFTP and quoted paths would not
        # expand it)
        workdir = str(login.get("workdir") or "abcitrain").rstrip("/")
        workdir = workdir[2:] if workdir.startswith("~/") else workdir
        ssh.local_root = project_dir.rstrip("/")
        ssh.remote_root = f"{workdir}/{Path(project_dir).name}"
    return ssh


class SchedulerHere(LocalTransport):
    """This machine, for a profile whose scheduler runs here: before the first command, it
    makes sure the program on PATH is that scheduler's (PBS's and Grid Engine's commands
    share names) and refuses, in one message, when it is another's. When the scheduler's
    own commands come later on PATH, they are run from their folder by full path."""

    def __init__(self, profile: Any) -> None:
        super().__init__()
        self.profile = profile
        self._checked = False
        self._folder: str | None = None

    def run(self, argv: Sequence[str], cwd: str | None = None,
            timeout: float | None = 120) -> RunResult:
        """Run ``argv`` here, once the scheduler's identity is known to be right."""
        if not self._checked:
            from ..errors import WrongScheduler
            from .identity import mismatch, own_folder

            why = mismatch(self.profile)
            if why:
                raise WrongScheduler(f"cluster {self.profile.name!r} cannot be reached here: "
                                     f"{why}")
            self._folder = own_folder(self.profile)
            self._checked = True
        if self._folder and argv and "/" not in argv[0]:
            own = Path(self._folder) / argv[0]
            if os.access(own, os.X_OK):
                argv = [str(own), *argv[1:]]
        return super().run(argv, cwd=cwd, timeout=timeout)


def is_remote(transport: Transport) -> bool:
    """True when ``transport`` reaches another machine (files must be copied to and fro)."""
    return not isinstance(transport, LocalTransport)


def close_transports() -> None:
    """Close every SSH connection this process opened."""
    while _OPEN:
        _, transport = _OPEN.popitem()
        close = getattr(transport, "close", None)
        if close is not None:
            close()


def existing_ledger() -> Ledger | None:
    """The ledger, if one has been started (reading must not create it)."""
    return Ledger() if ledger_path().exists() else None


class Explains(Protocol):
    """A scheduler spelling that can put its messages into plain words."""

    def explain(self, text: str) -> str | None:
        """A plain explanation of a scheduler message, when one is known."""
        ...


def refusal(backend: Explains, result: RunResult) -> SchedulerError:
    """A failed scheduler command as the error the user sees: its words and their meaning."""
    text = f"{result.stderr}\n{result.stdout}"
    return SchedulerError(result.argv, result.returncode, result.stdout, result.stderr,
                          backend.explain(text))
