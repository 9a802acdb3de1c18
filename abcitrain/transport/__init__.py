"""The one seam through which abcitrain runs commands and moves files on the host where
the scheduler lives: the ``Transport`` protocol and ``RunResult`` (``base``), this machine
(``local``), a login node over SSH (``ssh``, with ``sshconfig`` resolving ~/.ssh/config into
hops, ``hostkeys`` for known_hosts, ``fingerprints``, ``shellread`` reading a command's
answer from the shell kept open there, and ``sync`` uploading a project folder). paramiko
is imported only when SSH is used.

May import: ``errors``, ``util``.
"""

from .base import RunResult, Transport
from .local import LocalTransport

__all__ = ["LocalTransport", "RunResult", "Transport"]
