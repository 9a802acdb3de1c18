"""Where an SSH host really is: ~/.ssh/config resolved into the hops to reach it.

OpenSSH's client reads Host, HostName, User, Port, IdentityFile, IdentitiesOnly,
UserKnownHostsFile and ProxyJump from ~/.ssh/config; abcitrain reads the same file (with
paramiko's parser, which matches Host patterns as OpenSSH does) so that a host a user reaches
with ``ssh abci`` is reached the same way here. ``ProxyJump a,b`` is a chain: the first jump
host is reached directly, each next one through the one before, the target last; a jump
host's own ProxyJump is honoured (as OpenSSH does), and a loop is refused. Nothing here
opens a connection, and paramiko is imported only to parse.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, Problem

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
SYSTEM_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
#: user@host:port, user@host, host:port or host; [v6]:port for IPv6 literals.
_DESTINATION = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|"
                          r"(?P<host>[A-Za-z0-9._-]+))(?::(?P<port>\d{1,5}))?$")
MAX_HOPS = 8
#: Seconds to wait for a hop to answer (TCP connect, banner, authentication, channel).
CONNECT_TIMEOUT = 20.0


@dataclass(frozen=True)
class Hop:
    """One SSH server on the way: where it is and how to log in and check its key."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    identities_only: bool
    known_hosts: tuple[str, ...]

    @property
    def label(self) -> str:
        """user@host:port, and the alias when it differs (for messages)."""
        where = f"{self.user}@{self.hostname}:{self.port}"
        return where if self.alias == self.hostname else f"{self.alias} ({where})"

    @property
    def known_hosts_name(self) -> str:
        """The name known_hosts files record this server's key under."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


def config_path() -> Path:
    """The ssh client configuration abcitrain reads (ABCITRAIN_SSH_CONFIG, else ~/.ssh/config)."""
    return Path(os.environ.get("ABCITRAIN_SSH_CONFIG") or "~/.ssh/config").expanduser()


def resolve(destination: str, config_file: Path | None = None) -> tuple[Hop, ...]:
    """The hops to ``destination`` (a Host of the ssh config, or user@host:port), jump
    hosts first and the destination last; InputError for a destination that cannot be
    parsed or a ProxyJump loop."""
    import paramiko

    path = config_file or config_path()
    config = paramiko.SSHConfig.from_path(str(path)) if path.is_file() \
        else paramiko.SSHConfig.from_text("")
    return tuple(_resolve(destination, config, ()))


def _resolve(destination: str, config: Any, seen: tuple[str, ...]) -> list[Hop]:
    match = _DESTINATION.match(destination.strip())
    if not match:
        raise InputError("bad SSH destination", [Problem("ssh", (
            f"{destination!r} is not a host: give a Host of ~/.ssh/config or user@host:port"))])
    if destination in seen or len(seen) >= MAX_HOPS:
        raise InputError("ProxyJump loop", [Problem("ssh", (
            "ProxyJump goes round in a circle: " + " -> ".join((*seen, destination))))])
    name = match["host"] or match["v6"]
    opts = config.lookup(name)
    port = int(match["port"] or opts.get("port", 22))
    if not 0 < port < 65536:
        raise InputError("bad SSH port", [Problem("ssh", f"port {port} of {destination!r}")])
    files = tuple(str(Path(f).expanduser()) for f in opts.get("identityfile", []))
    known = opts.get("userknownhostsfile")
    known_files = tuple(str(Path(k).expanduser()) for k in known.split()) if known \
        else tuple(str(Path(k).expanduser()) for k in DEFAULT_KNOWN_HOSTS)
    hop = Hop(alias=name, hostname=opts.get("hostname", name), port=port,
              user=match["user"] or opts.get("user") or getpass.getuser(),
              identity_files=files,
              identities_only=str(opts.get("identitiesonly", "no")).lower() == "yes",
              known_hosts=known_files)
    chain: list[Hop] = []
    jumps = opts.get("proxyjump", "none")
    if jumps and jumps.lower() != "none":
        for jump in jumps.split(","):
            chain += _resolve(jump.strip(), config, (*seen, destination))
    return [*chain, hop]
