"""``abcitrain launch``: start every rank of a job, stop it before the walltime, continue it.

Inside a job (a rendered script exports ABCITRAIN_JOB_ID, ABCITRAIN_CLUSTER, the node file,
the walltime and the time the job started) it:

1. reads the node list and the profile's launcher settings, writes the hostfile, picks
   MASTER_ADDR (the first host) and MASTER_PORT (from the job id across nodes, a free
   port on one node);
2. starts the ranks in a process group of their own, the stop signal ignored by the
   launchers in between (torchrun and DeepSpeed's launcher would die of an unhandled USR2)
   while the trainer installs its handler; ABCITRAIN_STOP_AT (epoch seconds) goes to every
   rank as well, for ranks on nodes no local signal reaches;
3. at walltime minus ``--stop-before`` sends the signal to the group (so does a signal the
   scheduler or a user sends to ``launch``); the ranks agree to stop after the same step
   and save a checkpoint;
4. when they stopped early (``state.json`` says ``stopped``) and the job may be continued
   (``--max-jobs``), submits the same spec again, which resumes from the checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..util.words import plural
from .commands import (
    Invocation,
    LauncherSettings,
    Rendezvous,
    hostfile_text,
    invocations,
    settings_from,
)
from .nodes import free_port, master_port, node_list

CHAIN_VAR = "ABCITRAIN_CHAIN_INDEX"


@dataclass(frozen=True)
class LaunchOptions:
    """What ``abcitrain launch`` was asked to do."""

    command: tuple[str, ...]
    ranks_per_node: int | None = None
    kind: str | None = None
    signal_name: str = "USR2"
    stop_before_s: int = 300
    state_file: Path | None = None
    resubmit_spec: Path | None = None
    max_jobs: int = 1
    dry_run: bool = False
    #: MPI options for this job, after the profile's launcher.mpirun_args
    mpirun_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchPlan:
    """Everything ``launch`` will start, for the log and for ``--dry-run``."""

    rendezvous: Rendezvous
    node_source: str
    settings: LauncherSettings
    hostfile: str
    invocations: tuple[Invocation, ...]
    env: Mapping[str, str]
    stop_at: float | None


def profile_settings(env: Mapping[str, str]) -> LauncherSettings:
    """The launcher settings of the job's cluster (``ABCITRAIN_CLUSTER``), else defaults."""
    cluster = env.get("ABCITRAIN_CLUSTER")
    if not cluster:
        return LauncherSettings()
    from ..profiles import load_profile
    return settings_from(load_profile(cluster).data.get("launcher"))


def ranks_per_node(opts: LaunchOptions, env: Mapping[str, str]) -> int:
    """``--nproc-per-node``, else the job's ABCITRAIN_RANKS_PER_NODE, else its GPUs, else 1."""
    if opts.ranks_per_node:
        return opts.ranks_per_node
    for var in ("ABCITRAIN_RANKS_PER_NODE", "ABCITRAIN_GPUS_PER_NODE"):
        if env.get(var, "").isdigit() and int(env[var]) > 0:
            return int(env[var])
    return 1


def stop_time(opts: LaunchOptions, env: Mapping[str, str]) -> float | None:
    """When the ranks must stop: the job's start plus its walltime, less ``stop_before``."""
    start, wall = env.get("ABCITRAIN_JOB_START", ""), env.get("ABCITRAIN_WALLTIME_S", "")
    if not (start.isdigit() and wall.isdigit()):
        return None
    return int(start) + int(wall) - opts.stop_before_s


def plan_launch(opts: LaunchOptions, env: Mapping[str, str], hostfile: str) -> LaunchPlan:
    """Work out the rendezvous and the commands without starting anything."""
    nodes = node_list(env)
    settings = profile_settings(env).for_job(env)
    if opts.kind and opts.kind != settings.kind:
        # another kind reaches other nodes its own way: its default one
        settings = settings.with_kind(opts.kind)
    if opts.mpirun_args:
        # the job's own MPI options after the profile's (a later Open MPI option wins)
        settings = replace(settings, mpirun_args=(*settings.mpirun_args, *opts.mpirun_args))
    multi = len(nodes.hosts) > 1
    # Across nodes every node must find the same port, so it comes from the job id; on one
    # node only this launcher needs it, and a free one cannot clash with another job's
    # (job ids of different clusters, or of two local spools, repeat).
    port = master_port(env.get("ABCITRAIN_JOB_ID")) if multi else free_port()
    rdv = Rendezvous(nodes.hosts, ranks_per_node(opts, env),
                     nodes.hosts[0] if multi else "127.0.0.1", port,
                     env.get("ABCITRAIN_JOB_ID") or "local")
    stop_at = stop_time(opts, env)
    rank_env = {"MASTER_ADDR": rdv.master_addr, "MASTER_PORT": str(rdv.master_port),
                **settings.env, "ABCITRAIN_STOP_SIGNAL": opts.signal_name}
    if stop_at is not None:
        rank_env["ABCITRAIN_STOP_AT"] = str(int(stop_at))
    for key in ("ABCITRAIN_JOB_ID", CHAIN_VAR):
        if env.get(key):
            rank_env[key] = env[key]
    invs = invocations(settings, rdv, opts.command, hostfile, str(Path.cwd()), rank_env)
    return LaunchPlan(rdv, nodes.source, settings, hostfile, tuple(invs), rank_env, stop_at)


def describe(plan: LaunchPlan) -> list[str]:
    """Lines for the job log: where the ranks run and the exact commands."""
    rdv = plan.rendezvous
    lines = [f"abcitrain launch: {plural(len(rdv.hosts), 'node')} from {plan.node_source}, "
             f"{plural(rdv.ranks_per_node, 'rank')} each ({rdv.world} in all), master "
             f"{rdv.master_addr}:{rdv.master_port}, launcher {plan.settings.kind}"]
    if plan.stop_at is not None:
        left = plan.stop_at - time.time()
        lines.append(f"abcitrain launch: stop signal in {max(0, int(left))} s "
                     f"({time.strftime('%H:%M:%S', time.localtime(plan.stop_at))})")
    lines += [f"abcitrain launch: [{inv.host}] {inv.text()}" for inv in plan.invocations]
    return lines


def launch(opts: LaunchOptions, env: Mapping[str, str] | None = None) -> int:
    """Run the ranks; returns the exit status to leave the job with."""
    env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="abcitrain-launch.") as tmp:
        hostfile = str(Path(tmp) / "hostfile")
        plan = plan_launch(opts, env, hostfile)
        Path(hostfile).write_text(hostfile_text(plan.rendezvous))
        for line in describe(plan):
            print(line, flush=True)
        if opts.dry_run:
            print(hostfile_text(plan.rendezvous), end="")
            return 0
        child_env = {**env, **plan.env}
        if plan.settings.kind == "deepspeed" and len(plan.rendezvous.hosts) > 1:
            # DeepSpeed's runner carries only a few prefixes to other nodes; the rest go in
            # its environment file.
            env_file = Path(tmp) / "deepspeed_env"
            env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(plan.env.items())))
            child_env["DS_ENV_FILE"] = str(env_file)
        code = _run(plan, child_env, signal_number(opts.signal_name))
    return after(opts, code, env)


def signal_number(name: str) -> int:
    """``USR2`` -> signal.SIGUSR2."""
    return int(getattr(signal, f"SIG{name}"))


def _run(plan: LaunchPlan, env: dict[str, str], signum: int) -> int:
    def ignore_stop_signal() -> None:
        signal.signal(signum, signal.SIG_IGN)

    def own_env(inv: Invocation) -> dict[str, str]:
        # the launcher's own variables are ssh option lists: the user's come first
        extra = {k: f"{env[k]} {val}" if env.get(k) else val for k, val in inv.env.items()}
        return {**env, **extra}

    procs = [subprocess.Popen(list(inv.argv), env=own_env(inv), start_new_session=True,
                              preexec_fn=ignore_stop_signal)
             for inv in plan.invocations]

    def to_all(sig: int, stop: bool = False) -> None:
        for inv, p in zip(plan.invocations, procs, strict=True):
            if p.poll() is None and (inv.signal_ranks or not stop):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, sig)

    done = threading.Event()

    def timer() -> None:
        if plan.stop_at is not None and not done.wait(max(0.0, plan.stop_at - time.time())):
            print("abcitrain launch: walltime is near, asking the ranks to checkpoint and stop",
                  flush=True)
            to_all(signum, stop=True)

    previous = {s: signal.signal(s, lambda sig, _f: to_all(sig, stop=sig == signum))
                for s in (signum, signal.SIGTERM, signal.SIGINT)}
    watcher = threading.Thread(target=timer, daemon=True)
    watcher.start()
    try:
        first_bad = _wait_all(plan.invocations, procs, to_all)
    finally:
        done.set()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if first_bad is None:
        return 0
    return 128 - first_bad if first_bad < 0 else first_bad   # killed by signal N: 128+N


def _wait_all(invs: tuple[Invocation, ...], procs: list[subprocess.Popen[bytes]],
              send: Callable[[int], None], grace_s: float = 30) -> int | None:
    """Wait for every process; the first to fail ends the others (the ranks it started are
    gone, so the rest would wait at the rendezvous until its timeout): SIGTERM, SIGKILL
    after ``grace_s``. Returns the exit status of the first that failed, None when all
    succeeded."""
    first_bad: int | None = None
    kill_at: float | None = None
    running = dict(zip(procs, invs, strict=True))
    while running:
        for proc in [p for p in running if p.poll() is not None]:
            inv = running.pop(proc)
            if proc.returncode != 0 and first_bad is None:
                first_bad = proc.returncode
                if running:
                    print(f"abcitrain launch: [{inv.host}] {inv.argv[0]} exited with status "
                          f"{proc.returncode}; stopping the ranks on the other nodes", flush=True)
                    send(signal.SIGTERM)
                    kill_at = time.monotonic() + grace_s
        if running and kill_at is not None and time.monotonic() > kill_at:
            send(signal.SIGKILL)
            kill_at = None
        time.sleep(0.2)
    return first_bad


def read_state(path: Path | None) -> dict[str, object] | None:
    """The trainer's state.json, or None when it wrote none."""
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def after(opts: LaunchOptions, code: int, env: Mapping[str, str]) -> int:
    """Continue a run the ranks stopped early, within the job budget ``--max-jobs``."""
    state = read_state(opts.state_file)
    if code != 0 or state is None or state.get("status") != "stopped":
        return code
    index = int(env.get(CHAIN_VAR, "1") or 1)
    where = f"step {state.get('step')} of {state.get('steps')}"
    if opts.resubmit_spec is None or index >= opts.max_jobs:
        print(f"abcitrain launch: stopped at {where}; this was job {index} of at most "
              f"{opts.max_jobs}: submit the spec again to continue from the checkpoint",
              flush=True)
        return 0
    argv = [sys.executable, "-m", "abcitrain", "submit", "--chain-index", str(index + 1),
            str(opts.resubmit_spec)]
    print(f"abcitrain launch: stopped at {where}; submitting job {index + 1} of at most "
          f"{opts.max_jobs} to continue: {' '.join(argv[1:])}", flush=True)
    result = subprocess.run(argv, check=False, env=dict(env))
    return result.returncode


def parse_signal_name(name: str) -> str:
    """Accept USR2, SIGUSR2 or usr2; refuse names this system lacks."""
    bare = name.upper().removeprefix("SIG")
    if not hasattr(signal, f"SIG{bare}"):
        raise ValueError(f"{name!r} is not a signal on this system")
    return bare

