"""The one seam through which abcitrain runs commands and moves files on the host where
the scheduler lives: the ``Transport`` protocol and ``RunResult`` (``base``), this machine
(``local``); the SSH transport for a laptop belongs here too.

May import: ``errors`` and ``util`` only.
"""

from .base import RunResult, Transport
from .local import LocalTransport

__all__ = ["LocalTransport", "RunResult", "Transport"]
