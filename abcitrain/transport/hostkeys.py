"""Host keys: a server's key fetched without logging in, what known_hosts says of it, and
adding it there (``abcitrain ssh trust``). Fingerprints are printed as OpenSSH prints them,
so the user can compare them with the site's published ones."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from .fingerprints import fingerprint as fingerprint  # re-exported for `abcitrain ssh`
from .sshconfig import CONNECT_TIMEOUT, SYSTEM_KNOWN_HOSTS, Hop, resolve


def server_key(destination: str, config_file: Path | None = None,
               connect_timeout: float = CONNECT_TIMEOUT) -> tuple[Hop, Any]:
    """The key the last hop to ``destination`` presents, fetched without logging in to it
    (the jump hosts before it must be trusted already: they are logged in to)."""
    import paramiko

    from .ssh import SshTransport, Unreachable

    hops = resolve(destination, config_file)
    via: SshTransport | None = None
    try:
        if len(hops) > 1:
            via = SshTransport(destination, config_file, connect_timeout)
            via.hops = hops[:-1]
            via.connect()
            sock = via._channel_to(via._clients[-1], hops[-1])
        else:
            try:
                sock = socket.create_connection((hops[-1].hostname, hops[-1].port),
                                                timeout=connect_timeout)
            except OSError as exc:
                raise Unreachable(f"cannot connect to {hops[-1].label}: {exc}") from None
        wire = paramiko.Transport(sock)
        try:
            wire.start_client(timeout=connect_timeout)
            key = wire.get_remote_server_key()
        except paramiko.SSHException as exc:
            raise Unreachable(f"{hops[-1].label} did not complete the SSH handshake: "
                              f"{exc}") from None
        finally:
            wire.close()
    finally:
        if via is not None:
            via.close()
    return hops[-1], key


def known_key(hop: Hop, key: Any) -> bool | None:
    """True when known_hosts already records ``key`` for ``hop``, False when it records
    another key for it, None when it records none."""
    import paramiko

    keys = paramiko.HostKeys()
    for path in (*SYSTEM_KNOWN_HOSTS, *hop.known_hosts):
        if Path(path).is_file():
            keys.load(path)
    recorded = keys.lookup(hop.known_hosts_name)
    if not recorded:
        return None
    mine = recorded.get(key.get_name())
    return mine is not None and mine.asbytes() == key.asbytes()


def add_known_host(hop: Hop, key: Any) -> Path:
    """Append ``key`` for ``hop`` to the first known_hosts file the config names (created
    0600 in a 0700 folder when missing); returns the file."""
    path = Path(hop.known_hosts[0])
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    new = not path.exists()
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{hop.known_hosts_name} {key.get_name()} {key.get_base64()}\n")
    if new:
        path.chmod(0o600)
    return path
