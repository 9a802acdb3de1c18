"""SSH failures before any login: each ends in one line naming the host and what happened,
with no paramiko traceback on stderr. The peers here are plain TCP listeners on loopback made
by the test (no sshd needed): one resets every connection, one never says anything."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from abcitrain.errors import TransportError
from abcitrain.transport.ssh import SshTransport


def _listener(behave: str) -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if behave == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00"
                                b"\x00\x00\x00\x00")
                conn.close()
            else:
                held.append(conn)          # "silent": accepts and never speaks

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture
def resetting() -> Iterator[int]:
    yield from _listener("reset")


@pytest.fixture
def silent() -> Iterator[int]:
    yield from _listener("silent")


def test_a_port_that_resets_before_the_banner_is_one_line_and_no_traceback(
        resetting: int, capsys: pytest.CaptureFixture[str]) -> None:
    tr = SshTransport(f"someone@127.0.0.1:{resetting}", connect_timeout=5)
    with pytest.raises(TransportError) as info:
        tr.run(["true"])
    said = str(info.value)
    assert "127.0.0.1" in said and str(resetting) in said and "\n" not in said
    assert "did not speak SSH" in said, said
    err = capsys.readouterr().err
    assert "Traceback" not in err and "paramiko" not in err, err


def test_a_silent_port_times_out_at_the_connect_timeout_saying_so(
        silent: int, capsys: pytest.CaptureFixture[str]) -> None:
    tr = SshTransport(f"someone@127.0.0.1:{silent}", connect_timeout=2)
    with pytest.raises(TransportError) as info:
        tr.run(["true"])
    said = str(info.value)
    assert "127.0.0.1" in said and "did not speak SSH (no banner within 2 s" in said, said
    assert "Traceback" not in capsys.readouterr().err


def test_a_reset_paramiko_reports_as_eof_is_the_same_one_line(
        resetting: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Depending on when the reset lands, paramiko raises EOFError (seen in a full CI run)
    instead of ConnectionResetError: the same message, no traceback."""
    import paramiko

    def connect(self: object, *args: object, **kwargs: object) -> None:
        raise EOFError()

    monkeypatch.setattr(paramiko.SSHClient, "connect", connect)
    tr = SshTransport(f"someone@127.0.0.1:{resetting}", connect_timeout=5)
    with pytest.raises(TransportError, match="did not speak SSH"):
        tr.run(["true"])
