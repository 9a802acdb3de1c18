"""Reading one command's answer from the shell kept open on a login node (``SshTransport``):
stdout, exit status and stderr up to a random marker that nothing the command prints can
forge."""

from __future__ import annotations

import time
from typing import Any

from ..errors import TransportError


class CommandTimeout(TransportError):
    """A remote command did not finish in time."""


def until_marker(channel: Any, marker: str,
                  timeout: float | None) -> tuple[bytes, int, bytes]:
    """stdout, exit status and stderr of one command on the shell ``channel``: read until
    the marker line ends each stream (the newline printed before it is not the command's);
    CommandTimeout past ``timeout`` seconds, EOFError when the channel ends first. stdout is
    read as it comes; whatever stderr arrives meanwhile is taken every 50 ms, so that a
    command writing much to stderr never fills the channel's window and stalls."""
    deadline = None if timeout is None else time.monotonic() + timeout
    tag = b"\n" + marker.encode()
    out, err = bytearray(), bytearray()

    def left() -> float | None:
        if deadline is None:
            return None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CommandTimeout("timeout")
        return remaining

    while not (tag + b" " in out and out.endswith(b"\n")):
        remaining = left()
        channel.settimeout(0.05 if remaining is None else min(0.05, remaining))
        try:
            chunk = channel.recv(65536)
        except TimeoutError:
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
            continue
        if not chunk:
            raise EOFError("the shell on the login node ended")
        out += chunk
    while not err.endswith(tag + b"\n"):
        channel.settimeout(left())
        try:
            chunk = channel.recv_stderr(65536)
        except TimeoutError:
            raise CommandTimeout("timeout") from None
        if not chunk:
            raise EOFError("the shell on the login node ended")
        err += chunk
    at = out.rindex(tag + b" ")
    return bytes(out[:at]), int(out[at + len(tag) + 1:].strip()), bytes(err[:-len(tag) - 1])
