"""Reaching a cluster from another machine: which clusters are remote, and the SSH host-key
commands (`abcitrain ssh trust | check`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError, Problem


@dataclass(frozen=True)
class HostKeyFacts:
    """What `ssh trust` shows before asking: the server, its key and what known_hosts says."""

    label: str
    key_type: str
    fingerprint: str
    #: True: already trusted; False: known_hosts holds ANOTHER key; None: unknown.
    known: bool | None
    hop: Any
    key: Any


def host_key(destination: str) -> HostKeyFacts:
    """The key ``destination``'s server presents (through its jump hosts)."""
    from ..transport.hostkeys import fingerprint, known_key, server_key

    hop, key = server_key(destination)
    return HostKeyFacts(hop.label, key.get_name(), fingerprint(key), known_key(hop, key),
                        hop, key)


def trust(facts: HostKeyFacts) -> str:
    """Record the key of ``facts`` in known_hosts; the file written. A changed key is never
    replaced here: the user removes the old one first, knowingly."""
    from ..transport.hostkeys import add_known_host

    if facts.known is False:
        raise InputError("host key changed", [Problem("ssh", (
            f"known_hosts records another key for {facts.label}: remove it with "
            f"`ssh-keygen -R '{facts.hop.known_hosts_name}'` if the administrators changed "
            "it, then trust the new one"))])
    return str(add_known_host(facts.hop, facts.key))


def check(destination: str) -> list[str]:
    """Log in to ``destination`` (through its jump hosts) and run ``hostname`` there: the
    hops crossed and the answer."""
    from ..transport.ssh import SshTransport

    with SshTransport(destination) as ssh:
        result = ssh.run(["hostname"], timeout=60)
        return [*(f"via {hop.label}" for hop in ssh.hops[:-1]),
                f"{ssh.target.label}: `hostname` says {result.stdout.strip() or '?'} "
                f"(exit {result.returncode})"]
