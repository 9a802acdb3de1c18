"""The command that starts every rank, for the launcher a cluster's profile names.

- ``torchrun``: one node: ``python -m torch.distributed.run`` here. Several nodes: one
  torchrun per node meeting at a c10d rendezvous on the first host, started by ``srun`` (Slurm)
  or by ``ssh -p PORT`` (elsewhere; the first host runs its share directly).
- ``deepspeed``: DeepSpeed's runner with a hostfile (``host slots=N``), the first host as
  master and ``--launcher openmpi`` or ``pdsh`` (with ``--ssh_port``) across nodes; no ssh
  reachability check (compute nodes often refuse a login to themselves); no
  ``--local_rank`` argument (it would land between the interpreter and the script; the
  ranks read LOCAL_RANK).
- ``mpirun``: Open MPI's mpirun over the same hostfile, exporting the rendezvous and NCCL
  variables with ``-x``; the trainer maps OMPI_COMM_WORLD_* to RANK/WORLD_SIZE itself.

Every ssh between nodes gets the profile's ``ssh_args`` and port: on ssh's command line
(torchrun), in ``PDSH_SSH_ARGS_APPEND`` (pdsh) or in ``OMPI_MCA_plm_rsh_args`` (Open MPI's
ssh starter; under a scheduler it knows, Open MPI starts its daemons without ssh and
ignores them).

All of them run the training command with ``--no-python``-style flags: the command is given
whole, its ``python`` already resolved to the interpreter abcitrain runs on.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..domain import LAUNCHER_KINDS as KINDS
from ..domain import LAUNCHER_MULTINODE as MULTINODE


@dataclass(frozen=True)
class LauncherSettings:
    """A profile's ``launcher:`` section."""

    kind: str = "torchrun"
    multinode: str = "ssh"
    ssh_port: int | None = None
    ssh_port_env: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    mpirun_args: tuple[str, ...] = ()
    #: options for every ssh between nodes (``-i KEY``, ``-F CONFIG``, ``-o Opt=value``)
    ssh_args: tuple[str, ...] = ()

    def port(self, env: Mapping[str, str]) -> int | None:
        """The ssh port between nodes: from the job's environment when the site hands one out
        per job (ABCI 2.0's SSH_PORT), else the profile's."""
        if self.ssh_port_env and env.get(self.ssh_port_env, "").isdigit():
            return int(env[self.ssh_port_env])
        return self.ssh_port

    def for_job(self, job_env: Mapping[str, str]) -> LauncherSettings:
        """These settings with the port the job was given (the variable lives in the job's
        environment, not in the ranks' that ``invocations`` sees)."""
        return replace(self, ssh_port=self.port(job_env), ssh_port_env=None)

    def ssh_options(self) -> list[str]:
        """The profile's ssh options and the port, as ssh's own arguments (the port as
        resolved by ``for_job``)."""
        return [*self.ssh_args, *(["-p", str(self.ssh_port)] if self.ssh_port else [])]

    def with_kind(self, kind: str) -> LauncherSettings:
        """The same settings for another launcher kind, which reaches other nodes its own
        default way."""
        return replace(self, kind=kind, multinode=MULTINODE[kind][0])


def settings_from(data: Mapping[str, Any] | None) -> LauncherSettings:
    """Settings from a profile's validated ``launcher:`` mapping (None: the defaults)."""
    if not data:
        return LauncherSettings()
    kind = data.get("kind", "torchrun")
    return LauncherSettings(
        kind=kind, multinode=data.get("multinode") or MULTINODE[kind][0],
        ssh_port=data.get("ssh_port"), ssh_port_env=data.get("ssh_port_env"),
        env={k: str(v) for k, v in (data.get("env") or {}).items()},
        mpirun_args=tuple(data.get("mpirun_args") or ()),
        ssh_args=tuple(data.get("ssh_args") or ()))


@dataclass(frozen=True)
class Rendezvous:
    """Where and how many: hosts (first is the master), ranks per host, address, port, id."""

    hosts: tuple[str, ...]
    ranks_per_node: int
    master_addr: str
    master_port: int
    job_id: str = "local"

    @property
    def world(self) -> int:
        """Ranks in all."""
        return len(self.hosts) * self.ranks_per_node


@dataclass(frozen=True)
class Invocation:
    """One process to start on this host (its argv), and what runs where."""

    argv: tuple[str, ...]
    host: str = "localhost"
    #: False where a signal to this process would not reach the ranks whole: srun forwards
    #: it to the per-node torchrun agents, which an unhandled USR2 kills. Those ranks stop
    #: at ABCITRAIN_STOP_AT by themselves.
    signal_ranks: bool = True
    #: variables for this process only (how it reaches other nodes), not for the ranks
    env: Mapping[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """The command as a shell would show it, its own variables first."""
        return shlex.join([*(f"{k}={v}" for k, v in sorted(self.env.items())), *self.argv])


def resolve_python(command: Sequence[str]) -> list[str]:
    """``python``/``python3`` at the head of the command means abcitrain's own interpreter,
    the environment with torch and DeepSpeed that launched this job."""
    cmd = list(command)
    if cmd and cmd[0] in ("python", "python3"):
        cmd[0] = sys.executable
    return cmd


def hostfile_text(rdv: Rendezvous) -> str:
    """DeepSpeed's and Open MPI's hostfile: ``host slots=N`` per node."""
    return "".join(f"{h} slots={rdv.ranks_per_node}\n" for h in rdv.hosts)


def _torchrun(rdv: Rendezvous, multi: bool, is_host: bool | None = None) -> list[str]:
    head = [sys.executable, "-m", "torch.distributed.run",
            f"--nnodes={len(rdv.hosts)}", f"--nproc_per_node={rdv.ranks_per_node}"]
    if not multi:
        return [*head, f"--master_addr={rdv.master_addr}", f"--master_port={rdv.master_port}",
                "--no-python"]
    # Which agent serves the rendezvous store: said outright where the launcher knows (torch
    # otherwise guesses from host names and addresses, and a node file's name for this host
    # that is not its hostname, an InfiniBand alias say, leaves every agent waiting).
    conf = [] if is_host is None else [f"--rdzv_conf=is_host={int(is_host)}"]
    return [*head, "--rdzv_backend=c10d", f"--rdzv_endpoint={rdv.master_addr}:{rdv.master_port}",
            f"--rdzv_id={rdv.job_id}", *conf, "--no-python"]


def _open_mpi_ssh(settings: LauncherSettings) -> dict[str, str]:
    options = settings.ssh_options()
    return {"OMPI_MCA_plm_rsh_args": " ".join(options)} if options else {}


def invocations(settings: LauncherSettings, rdv: Rendezvous, command: Sequence[str],
                hostfile: str, workdir: str, env: Mapping[str, str]) -> list[Invocation]:
    """The processes this host starts to run ``command`` on every rank (``settings`` with
    the job's ssh port resolved: ``LauncherSettings.for_job``).

    ``env`` holds the variables the ranks need on every node (rendezvous, NCCL, abcitrain's
    stop time); launchers that do not carry the environment to other nodes get them spelled
    out (``-x`` for mpirun, ``env K=V`` over ssh).
    """
    cmd = resolve_python(command)
    multi = len(rdv.hosts) > 1
    if settings.kind == "torchrun":
        if not multi:
            return [Invocation((*_torchrun(rdv, multi), *cmd))]
        if settings.multinode == "srun":
            # one argv for every node: torch finds the host of the store by its name
            return [Invocation(("srun", f"--nodes={len(rdv.hosts)}", "--ntasks-per-node=1",
                                "--kill-on-bad-exit=1", *_torchrun(rdv, multi), *cmd),
                               signal_ranks=False)]
        out = [Invocation((*_torchrun(rdv, multi, is_host=True), *cmd), rdv.hosts[0])]
        remote = shlex.join(["cd", workdir]) + " && " + shlex.join(
            ["env", *(f"{k}={v}" for k, v in sorted(env.items())),
             *_torchrun(rdv, multi, is_host=False), *cmd])
        ssh = ["ssh", "-o", "BatchMode=yes", *settings.ssh_options()]
        out += [Invocation((*ssh, host, remote), host) for host in rdv.hosts[1:]]
        return out
    if settings.kind == "deepspeed":
        argv = [sys.executable, "-m", "deepspeed.launcher.runner", "--hostfile", hostfile,
                "--master_addr", rdv.master_addr, "--master_port", str(rdv.master_port),
                "--no_ssh_check", "--no_python", "--no_local_rank"]
        if not multi:
            return [Invocation((*argv, *cmd))]
        argv += ["--launcher", settings.multinode]
        if settings.multinode == "openmpi":
            if settings.mpirun_args:
                # DeepSpeed's runner adds these to its mpirun (and leaves out its default
                # --mca btl_tcp_if_include eth0 when they give one: ABCI nodes use bond0)
                argv += ["--launcher_args", shlex.join(settings.mpirun_args)]
            return [Invocation((*argv, *cmd), env=_open_mpi_ssh(settings))]
        if settings.ssh_port:
            argv += ["--ssh_port", str(settings.ssh_port)]
        own = {"PDSH_SSH_ARGS_APPEND": " ".join(settings.ssh_args)} if settings.ssh_args else {}
        return [Invocation((*argv, *cmd), env=own)]
    if settings.kind == "mpirun":
        argv = ["mpirun", "-np", str(rdv.world), "--hostfile", hostfile,
                "--map-by", f"ppr:{rdv.ranks_per_node}:node", *settings.mpirun_args]
        for key in sorted(env):
            argv += ["-x", key]
        return [Invocation((*argv, *cmd), env=_open_mpi_ssh(settings) if multi else {})]
    raise ValueError(f"unknown launcher {settings.kind!r}; choose one of: {', '.join(KINDS)}")
