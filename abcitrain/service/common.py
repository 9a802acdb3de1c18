"""What every service module shares: the transport that reaches a cluster, the ledger if
one exists, and a scheduler refusal turned into the error the user sees."""

from __future__ import annotations

from typing import Protocol

from ..errors import SchedulerError
from ..points.ledger import Ledger, ledger_path
from ..transport import LocalTransport, RunResult, Transport


def transport_for(cluster: str) -> Transport:
    """The transport that reaches ``cluster``'s scheduler (this machine, for now)."""
    return LocalTransport()


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
