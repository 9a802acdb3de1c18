"""``SshTransport``: commands and files on a login node reached over SSH (paramiko).

One connection per transport, opened on first use and kept for the whole command (a sweep's
many submissions reuse it). The hops come from ~/.ssh/config (``sshconfig.resolve``); a jump
host is crossed with a direct-tcpip channel, as OpenSSH's ProxyJump does, so nothing runs on
it. Host keys are checked against known_hosts and an unknown or changed key is refused,
never added (``abcitrain ssh trust HOST`` adds one when the user agrees). Keys come from the
config's IdentityFile, the ssh-agent and, unless IdentitiesOnly, ~/.ssh's usual files;
passwords are never asked for, so nothing secret passes through abcitrain. Each failure has
its own message: unreachable, host key unknown, host key changed, authentication refused,
command timed out.

Commands run as an argv joined with shell quoting (the remote side always has a shell), in
``cwd`` when given; files move over SFTP, written to a temporary name and renamed, as the
local transport does.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import stat
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import FileMissing, ProgramMissing, TransportError
from .base import RunResult
from .fingerprints import fingerprint
from .shellread import CommandTimeout, until_marker
from .sshconfig import CONNECT_TIMEOUT, SYSTEM_KNOWN_HOSTS, Hop, resolve

KEEPALIVE_S = 30


class HopSocket:
    """The channel through a jump host, as the next hop's socket (everything but ``close``
    is the channel's own).

    Closing the channel sends a message over the jump host's connection. When that
    connection is already gone (the network cut, the jump host restarted), paramiko's
    transport thread raised EOFError from its shutdown, which Python printed as a thread
    traceback (paramiko/paramiko#1585, open upstream). A link that is gone is closed."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    def close(self) -> None:
        """Close the channel; nothing to do when the connection under it is gone."""
        _close_quietly(self._channel)


class UnknownHostKey(TransportError):
    """The server's key is in no known_hosts file."""


class ChangedHostKey(TransportError):
    """The server's key differs from the one known_hosts records."""


class AuthRefused(TransportError):
    """The server accepted none of the user's keys."""


class Unreachable(TransportError):
    """No connection could be made to a hop; ``stage`` says how far it got."""

    def __init__(self, message: str, stage: str = "connecting") -> None:
        super().__init__(message)
        self.stage = stage


class SshTransport:
    """Runs commands and moves files on the host ``destination`` names (a Host of
    ~/.ssh/config, or user@host:port), through its ProxyJump hosts."""

    def __init__(self, destination: str, config_file: Path | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT, local_root: str | None = None,
                 remote_root: str | None = None) -> None:
        self.destination = destination
        self.hops: tuple[Hop, ...] = resolve(destination, config_file)
        self.connect_timeout = connect_timeout
        #: The project folder here and its copy on the target: every path under
        #: ``local_root`` (a cwd, an argv item, a file) means the same path under
        #: ``remote_root`` there.
        self.local_root = local_root.rstrip("/") if local_root else None
        self.remote_root = remote_root.rstrip("/") if remote_root else None
        self._clients: list[Any] = []
        self._sftp: Any = None
        self._shell: Any = None

    def remote_path(self, path: str) -> str:
        """``path`` as the target sees it (mapped when it lies in the project folder)."""
        root, there = self.local_root, self.remote_root
        if root and there is not None and (path == root or path.startswith(root + "/")):
            return there + path[len(root):]
        return path

    # -- connection -------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection (through every jump host) unless it is open."""
        if self._clients and self._clients[-1].get_transport() is not None \
                and self._clients[-1].get_transport().is_active():
            return
        self.close()
        import paramiko

        _quiet_paramiko()
        previous = None
        try:
            for hop in self.hops:
                client = paramiko.SSHClient()
                for path in (*SYSTEM_KNOWN_HOSTS, *hop.known_hosts):
                    if Path(path).is_file():
                        client.get_host_keys().load(path)
                client.set_missing_host_key_policy(_Refuse(hop))
                self._clients.append(client)       # closed with the rest on failure
                sock = None
                if previous is not None:
                    sock = self._channel_to(previous, hop)
                try:
                    self._login(client, hop, sock)
                except Unreachable as exc:
                    if previous is not None and _lost(previous):
                        jump = self.hops[self.hops.index(hop) - 1].label
                        raise Unreachable(
                            f"the connection to the jump host {jump} was lost while "
                            f"connecting through it to {hop.label} ({exc.stage}): try "
                            "again", exc.stage) from None
                    raise
                client.get_transport().set_keepalive(KEEPALIVE_S)
                previous = client
        except BaseException:
            self.close()
            raise

    def _channel_to(self, via: Any, hop: Hop) -> Any:
        import paramiko

        try:
            return HopSocket(via.get_transport().open_channel(
                "direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0),
                timeout=self.connect_timeout))
        except (paramiko.ChannelException, paramiko.SSHException, OSError) as exc:
            raise Unreachable(f"cannot reach {hop.label} through the jump host: {exc}; "
                              "check its HostName and Port, and that the jump host allows "
                              "TCP forwarding") from None

    def _login(self, client: Any, hop: Hop, sock: Any) -> None:
        import paramiko

        try:
            client.connect(hop.hostname, hop.port, username=hop.user,
                           key_filename=list(hop.identity_files) or None,
                           allow_agent=True, look_for_keys=not hop.identities_only,
                           timeout=self.connect_timeout, banner_timeout=self.connect_timeout,
                           auth_timeout=self.connect_timeout, sock=sock)
        except UnknownHostKey:
            raise
        except paramiko.BadHostKeyException as exc:
            raise ChangedHostKey(
                f"the host key of {hop.label} has CHANGED: it is not the one "
                f"{' or '.join(hop.known_hosts)} records (fingerprint now "
                f"{fingerprint(exc.key)}). Someone may be intercepting the connection; if "
                "the administrators changed the key, remove the old one with `ssh-keygen -R "
                f"'{hop.known_hosts_name}'` and run `abcitrain ssh trust {hop.alias}`. "
                "Nothing was run.") from None
        except paramiko.PasswordRequiredException:
            keys = ", ".join(hop.identity_files) or "a key in ~/.ssh"
            raise AuthRefused(
                f"{keys} is encrypted and no ssh-agent holds it, so it was never offered to "
                f"{hop.label}: add it to the agent (`ssh-add {keys.split(', ')[0]}`) and try "
                "again. Nothing was run.") from None
        except paramiko.AuthenticationException:
            if not _active(client):
                raise Unreachable(f"the connection to {hop.label} was lost during "
                                  "authentication: try again", "during authentication") from None
            keys = ", ".join(hop.identity_files) or "the ssh-agent's and ~/.ssh's keys"
            raise AuthRefused(
                f"{hop.label} refused every key offered ({keys}): check IdentityFile and "
                "User in ~/.ssh/config and that the public key is registered on the "
                "cluster. Nothing was run.") from None
        except TimeoutError:
            raise Unreachable(f"{hop.label} did not answer within {self.connect_timeout:g} s; "
                              "check the network (VPN?) and the host name") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            transport = client.get_transport()
            if transport is not None and transport.remote_version:
                # it spoke SSH: the connection was lost later, not refused
                stage = "authentication" if transport.session_id else "the key exchange"
                raise Unreachable(f"the connection to {hop.label} was lost during {stage} "
                                  f"({exc or type(exc).__name__}): try again",
                                  f"during {stage}") from None
            # a reset can surface as ConnectionResetError, or as paramiko's EOFError when it
            # comes while paramiko writes its own banner
            if isinstance(exc, ConnectionResetError | EOFError) or re.search(
                    r"protocol banner|No existing session", str(exc)):
                # paramiko's words for a peer that closed, reset, or never spoke SSH
                raise Unreachable(
                    f"{hop.label} did not speak SSH (no banner within "
                    f"{self.connect_timeout:g} s, or it reset the connection): check the "
                    "host's HostName and Port, and that sshd runs there",
                    "before it spoke SSH") from None
            raise Unreachable(f"cannot connect to {hop.label}: {exc}") from None

    def close(self) -> None:
        """Close the connection (the target first, then the jump hosts), quietly."""
        self._drop_shell()
        sftp, clients, self._sftp, self._clients = self._sftp, self._clients, None, []
        for closable in (sftp, *reversed(clients)):
            _close_quietly(closable)

    def __enter__(self) -> SshTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def target(self) -> Hop:
        """The host commands run on."""
        return self.hops[-1]

    # -- the Transport protocol ------------------------------------------------------

    def run(self, argv: Sequence[str], cwd: str | None = None,
            timeout: float | None = 120) -> RunResult:
        """Run ``argv`` on the target; never raises for a non-zero exit.

        Commands go to ONE shell kept open on the target (``exec /bin/sh`` on a session
        channel): an SSH exec costs the server a new session each time (about 100 ms
        measured against OpenSSH, 25 times an sbatch), a line to an open shell a few
        milliseconds. Each runs in a subshell (its ``cd`` and variables do not stay), with
        stdin from /dev/null, and ends with a random marker on stdout (with its exit status)
        and on stderr, which nothing the command prints can forge."""
        self.connect()
        command = shlex.join(self.remote_path(a) for a in argv)
        if cwd:
            command = f"cd {shlex.quote(self.remote_path(cwd))} && {command}"
        marker = uuid.uuid4().hex
        line = (f"( {command} ) </dev/null; printf '\\n%s %d\\n' {marker} $?; "
                f"printf '\\n%s\\n' {marker} >&2\n")
        what = " ".join(argv[:2])
        try:
            shell = self._shell_channel()
            shell.sendall(line.encode("utf-8"))
            out, code, err = until_marker(shell, marker, timeout)
        except CommandTimeout:
            self._drop_shell()
            raise CommandTimeout(f"`{what}` on {self.target.label} did not answer within "
                                 f"{timeout} s; the scheduler may be overloaded, try again "
                                 "later") from None
        except (OSError, EOFError, _ssh_exception()) as exc:
            self.close()
            raise TransportError(f"the connection to {self.target.label} was lost while "
                                 f"`{what}` ran ({exc or 'closed'})") from None
        stderr = err.decode("utf-8", errors="replace")
        if code == 127 and "not found" in stderr:
            raise ProgramMissing(f"`{argv[0]}` is not installed or not on PATH on "
                                 f"{self.target.label}: check the cluster name, or the "
                                 "modules the login shell loads")
        return RunResult(tuple(argv), code, out.decode("utf-8", errors="replace"), stderr)

    def _shell_channel(self) -> Any:
        if self._shell is None or self._shell.closed:
            channel = self._clients[-1].get_transport().open_session(
                timeout=self.connect_timeout)
            channel.exec_command("exec /bin/sh")
            self._shell = channel
        return self._shell

    def _drop_shell(self) -> None:
        """Close the shell (a command that ran over its time goes with it: sshd hangs up
        its process group)."""
        shell, self._shell = self._shell, None
        _close_quietly(shell)

    def write_text(self, path: str, text: str, mode: int = 0o644) -> None:
        """Write a file on the target, atomically (folders created)."""
        self.write_bytes(path, text.encode("utf-8"), mode)

    def write_bytes(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write bytes to a file on the target: a temporary name, then renamed."""
        sftp = self._sftp_client()
        path = self.remote_path(path)
        parent, name = path.rsplit("/", 1) if "/" in path else (".", path)
        tmp = f"{parent}/.{name}.abcitrain-tmp"
        # a cut mid-write leaves at most the temporary name, which nothing reads
        with self.file_step("uploading", path):
            self._makedirs(sftp, parent)
            with sftp.open(tmp, "wb") as handle:
                handle.write(data)
            sftp.chmod(tmp, mode)
            sftp.posix_rename(tmp, path)

    def read_text(self, path: str) -> str:
        """Read a file on the target."""
        return self.read_bytes(path).decode("utf-8", errors="replace")

    def read_bytes(self, path: str) -> bytes:
        """Read a file on the target, as bytes."""
        sftp = self._sftp_client()
        path = self.remote_path(path)
        try:
            with self.file_step("downloading", path), sftp.open(path, "rb") as handle:
                data: bytes = handle.read()
        except FileNotFoundError:
            raise FileMissing(f"{path} does not exist (yet) on {self.target.label}: the "
                              "job may not have started writing output") from None
        return data

    def makedirs(self, path: str) -> None:
        """Create ``path`` and its parents on the target, as ``mkdir -p`` does."""
        sftp = self._sftp_client()
        with self.file_step("creating the folder", path):
            self._makedirs(sftp, path)

    def _makedirs(self, sftp: Any, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        current = "/" if path.startswith("/") else ""
        for part in parts:
            current = f"{current}{part}" if current in ("", "/") else f"{current}/{part}"
            try:
                if not stat.S_ISDIR(sftp.stat(current).st_mode or 0):
                    raise TransportError(f"{current} on {self.target.label} is not a folder")
            except FileNotFoundError:
                sftp.mkdir(current)

    @contextlib.contextmanager
    def file_step(self, doing: str, path: str) -> Iterator[None]:
        """One SFTP step on ``path``: a connection that drops during it (an EOFError or an
        SSHException from paramiko, a socket error) ends in ONE TransportError naming the
        host, the step and the file, the connection closed; a refusal by the server (no
        permission, no space) in another. A missing file passes through as it is."""
        try:
            yield
        except (TransportError, FileNotFoundError):
            raise
        except (OSError, EOFError, _ssh_exception()) as exc:
            active = bool(self._clients) and self._clients[-1].get_transport() is not None \
                and self._clients[-1].get_transport().is_active()
            self.close()
            if active and isinstance(exc, OSError):
                raise TransportError(f"{self.target.label} refused {doing} {path}: "
                                     f"{exc.strerror or exc}") from None
            raise TransportError(f"the connection to {self.target.label} was lost while "
                                 f"{doing} {path} ({exc or type(exc).__name__}); nothing "
                                 "half-written is used: try again") from None

    def sftp(self) -> Any:
        """The connection's SFTP session (opened once)."""
        return self._sftp_client()

    def _sftp_client(self) -> Any:
        self.connect()
        if self._sftp is None:
            try:
                self._sftp = self._clients[-1].open_sftp()
            except (_ssh_exception(), OSError, EOFError) as exc:
                if not _active(self._clients[-1]):
                    self.close()
                    raise TransportError(f"the connection to {self.target.label} was lost "
                                         f"while opening SFTP ({exc or type(exc).__name__}): "
                                         "try again") from None
                raise TransportError(f"{self.target.label} offers no SFTP ({exc}): abcitrain "
                                     "moves files with it, as scp does; ask the site to "
                                     "enable the sftp subsystem") from None
        return self._sftp


def _active(client: Any) -> bool:
    """Whether a paramiko client's connection is still up."""
    transport = client.get_transport()
    return transport is not None and bool(transport.is_active())


#: How long a jump host's connection gets to show that it went down, after the hop behind it
#: failed: paramiko's reader thread notices a dead socket on its own, a moment after the
#: channel through it (and so the login behind it) already failed.
JUMP_LOST_WITHIN_S = 2.0


def _lost(client: Any, within_s: float = JUMP_LOST_WITHIN_S) -> bool:
    """Whether a paramiko client's connection is down, or goes down within ``within_s``."""
    deadline = time.monotonic() + within_s
    while _active(client):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _close_quietly(closable: Any) -> None:
    """Close it, if any: on a connection that just died its close message fails (ignored)."""
    if closable is not None:
        with contextlib.suppress(EOFError, OSError, _ssh_exception()):
            closable.close()


def _ssh_exception() -> type[Exception]:
    import paramiko

    error: type[Exception] = paramiko.SSHException
    return error


class _Refuse:
    """paramiko's missing-host-key policy: refuse, saying how to trust the key."""

    def __init__(self, hop: Hop) -> None:
        self.hop = hop

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise UnknownHostKey(
            f"the host key of {self.hop.label} is not known ({key.get_name()} "
            f"{fingerprint(key)}, in none of {', '.join(self.hop.known_hosts)}). Check the "
            "fingerprint with the cluster's documentation, then run `abcitrain ssh trust "
            f"{self.hop.alias}`. Nothing was run.")


def sync_project(ssh: SshTransport, progress: Any = None) -> Any:
    """Upload the transport's project folder (``local_root``) to ``remote_root``: only what
    changed (``transport.sync``)."""
    from .sync import synchronise

    if not ssh.local_root or ssh.remote_root is None:
        raise TransportError("no project folder to synchronise: the transport maps none")
    ssh.makedirs(ssh.remote_root)
    with ssh.file_step("uploading the project to", ssh.remote_root):
        return synchronise(ssh.sftp(), Path(ssh.local_root), ssh.remote_root, ssh.makedirs,
                           progress)


def _quiet_paramiko() -> None:
    """paramiko logs its own tracebacks (a banner never read, a reset connection) to a
    logger with no handler, which Python prints on stderr before abcitrain says what
    happened in one line: a handler that drops them keeps them out of the user's way (a
    program that configures logging still receives them, through the root logger)."""
    import logging

    log = logging.getLogger("paramiko")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
