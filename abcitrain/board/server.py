"""``abcitrain board``'s web server: a read-only page refreshed on its own.

One thread refreshes the snapshot every interval (one scheduler query per cluster, whatever
the number of teams or of people looking); requests only read the last page built, so the
board never multiplies scheduler queries. Only GET and HEAD exist: the page can change
nothing. Every response forbids scripts (Content-Security-Policy) on top of the escaping.

Bound to 127.0.0.1 by default, where a Host check keeps other web sites' pages (DNS
rebinding) out. Any other address needs a token, read from a file (never an option, never
logged; uvicorn's access log is off since it would log a ``?token=`` query): a browser
opens ``/?token=...`` once, gets it as an HttpOnly cookie and is sent on to ``/``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..errors import AbcitrainError, InputError, Problem
from .config import BoardConfig

log = logging.getLogger(__name__)

COOKIE = "abcitrain_board"
#: The shortest token accepted: guessing it must be hopeless.
MIN_TOKEN_CHARS = 16
HEADERS = [
    (b"content-security-policy", b"default-src 'none'; img-src data:; style-src "
     b"'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """True for an address (or localhost) that only this machine can reach."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: Path) -> str:
    """The token in ``path``: one line of at least MIN_TOKEN_CHARS characters, in a file
    only its owner can read."""
    problems = []
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("cannot read the token file", [Problem(
            str(path), getattr(exc, "strerror", None) or str(exc))]) from None
    if mode & 0o077:
        problems.append(Problem(str(path), f"others can read it (mode {mode & 0o777:o}); "
                                f"chmod 600 {path}"))
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        problems.append(Problem(str(path), f"the token must be one word of at least "
                                f"{MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 16`)"))
    if problems:
        raise InputError("the token file cannot be used", problems)
    return token


@dataclass
class Page:
    """The last board built: its HTML and its data as JSON."""

    html: bytes
    data: bytes


class Board:
    """The snapshot kept fresh by a background thread, and the ASGI app that serves it."""

    def __init__(self, config: BoardConfig, build: Callable[[], tuple[str, dict[str, Any]]],
                 token: str | None, loopback: bool) -> None:
        self.config = config
        self._build = build
        self._token = token
        self._loopback = loopback
        self._lock = threading.Lock()
        self._page: Page | None = None
        self._stop = threading.Event()
        self.refreshes = 0

    def update(self) -> None:
        """Build the page once (scheduler queries included) and make it the one served."""
        html, data = self._build()
        page = Page(html.encode("utf-8"), json.dumps(data, indent=1).encode("utf-8"))
        with self._lock:
            self._page = page
            self.refreshes += 1

    def keep_fresh(self) -> threading.Thread:
        """Start the thread that rebuilds the page every ``refresh_s`` until ``stop``."""
        def loop() -> None:
            while not self._stop.wait(self.config.refresh_s):
                try:
                    self.update()
                except AbcitrainError as exc:   # keep serving the last page; say why
                    log.warning("board refresh failed: %s", exc)
                except Exception:              # a defect: logged, the board stays up
                    log.exception("board refresh failed")

        thread = threading.Thread(target=loop, name="board-refresh", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """End the refresh thread (at its next wake-up)."""
        self._stop.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if self._loopback and _host_name(headers.get("host", "")) not in LOOPBACK_NAMES:
            await _respond(send, 421, b"this board answers to localhost only\n")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"the board is read-only\n",
                           [(b"allow", b"GET, HEAD")])
            return
        if self._token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            offered = (query.get("token") or [None])[0]
            if offered is not None:
                if not hmac.compare_digest(offered.encode(), self._token.encode()):
                    await _respond(send, 401, b"wrong token\n")
                    return
                # the token leaves the address bar (and the history) for a cookie
                cookie = f"{COOKIE}={offered}; HttpOnly; SameSite=Strict; Path=/"
                await _respond(send, 303, b"", [(b"location", scope["path"].encode()),
                                                (b"set-cookie", cookie.encode())])
                return
            if not self._authorized(headers):
                await _respond(send, 401, b"this board needs its token: open /?token=... "
                               b"(the token is in the organizer's token file)\n")
                return
        with self._lock:
            page = self._page
        if page is None:
            await _respond(send, 503, b"the board is being built\n")
        elif scope["path"] == "/":
            await _respond(send, 200, page.html, [(b"content-type",
                                                   b"text/html; charset=utf-8")],
                           head=scope["method"] == "HEAD")
        elif scope["path"] == "/data.json":
            await _respond(send, 200, page.data, [(b"content-type", b"application/json")],
                           head=scope["method"] == "HEAD")
        else:
            await _respond(send, 404, b"not found\n")

    def _authorized(self, headers: dict[str, str]) -> bool:
        assert self._token is not None
        offered = ""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered = auth[7:].strip()
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                offered = offered or value
        return bool(offered) and hmac.compare_digest(offered.encode(), self._token.encode())


def _host_name(host: str) -> str:
    """The name in a Host header, without its port ("[::1]:8765" -> "[::1]")."""
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _respond(send: Send, status: int, body: bytes,
                   extra: list[tuple[bytes, bytes]] | None = None, head: bool = False) -> None:
    headers = [*HEADERS, *(extra or [])]
    if not any(k == b"content-type" for k, _ in headers):
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one), or one clear error."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InputError("the board cannot listen there", [Problem(
            f"{host}:{port}", exc.strerror or str(exc))]) from None
    sock.listen(128)
    return sock


def serve(board: Board, sock: socket.socket) -> None:
    """Serve ``board`` on ``sock`` until interrupted (Ctrl-C or SIGTERM)."""
    try:
        import uvicorn
    except ImportError:
        raise AbcitrainError("the board needs uvicorn: pip install 'abcitrain[board]'") \
            from None
    config = uvicorn.Config(board, log_config=None, access_log=False, log_level="warning",
                            lifespan="off", server_header=False)
    thread = board.keep_fresh()
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        board.stop()
        thread.join(timeout=1)
        sock.close()
