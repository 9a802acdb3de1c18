"""Where a job's ranks run: the node list from the scheduler's environment, and its port.

Each scheduler says it differently: PBS writes one line per rank to ``$PBS_NODEFILE``, ABCI's
Grid Engine a host per line to ``$SGE_JOB_HOSTLIST``, a stock Grid Engine its parallel
environment's ``$PE_HOSTFILE`` (host, slots, queue, processors), Slurm a compressed list in
``$SLURM_JOB_NODELIST`` (``gpu[01-03,07],login1``). A rendered abcitrain script has already
written the hosts, one per line, to ``$ABCITRAIN_NODEFILE``; that comes first.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..backends import in_detect_order

_BRACKET = re.compile(r"([^\[,]*)\[([^\]]*)\]([^,]*)")


def expand_hostlist(text: str) -> list[str]:
    """Expand a Slurm host list: ``n[01-03,7],gpu5`` -> n01 n02 n03 n7 gpu5 (zero padding
    kept). Only one bracket per name, as Slurm writes them for flat node names."""
    hosts: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _BRACKET.match(text, pos)
        if m and (m.end() == len(text) or text[m.end()] == ","):
            prefix, ranges, suffix = m.groups()
            for part in ranges.split(","):
                lo, _, hi = part.partition("-")
                if not lo.isdigit() or (hi and not hi.isdigit()):
                    raise ValueError(f"cannot read the host range {part!r} in {text!r}")
                for n in range(int(lo), int(hi or lo) + 1):
                    hosts.append(f"{prefix}{n:0{len(lo)}d}{suffix}")
            pos = m.end() + 1
            continue
        end = text.find(",", pos)
        end = len(text) if end < 0 else end
        name = text[pos:end]
        if "[" in name or "]" in name:
            raise ValueError(f"cannot read the host list {text!r}")
        if name:
            hosts.append(name)
        pos = end + 1
    return hosts


def _first_column(path: Path) -> list[str]:
    hosts: list[str] = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] not in hosts:
            hosts.append(fields[0])
    return hosts


@dataclass(frozen=True)
class NodeList:
    """The job's hosts (first is the master) and where the list came from."""

    hosts: tuple[str, ...]
    source: str


def node_list(env: Mapping[str, str]) -> NodeList:
    """The job's hosts, first host first, each once."""
    schedulers = in_detect_order()
    files = ["ABCITRAIN_NODEFILE", *(v for b in schedulers for v in b.variables.node_files)]
    for var in files:
        path = env.get(var)
        if path and Path(path).is_file():
            hosts = _first_column(Path(path))
            if hosts:
                return NodeList(tuple(hosts), var)
    for var in (b.variables.host_list for b in schedulers if b.variables.host_list):
        if env.get(var):
            return NodeList(tuple(expand_hostlist(env[var])), var)
    return NodeList((socket.gethostname(),), "this machine")


def master_port(job_id: str | None) -> int:
    """A port derived from the job id, so that jobs sharing a node do not collide:
    10000 + id % 50000 (PBS's ``1234.pbs1`` and array forms use their number)."""
    digits = re.match(r"\d+", job_id or "")
    if not digits:
        return free_port()
    return 10000 + int(digits.group()) % 50000


def free_port() -> int:
    """A port free on this machine now (outside a job: no id to derive one from)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
