"""The local scheduler's commands (``python -m abcitrain.localsched
submit|stat|submitted|cancel|run``).

Output is machine-readable on purpose (the job id alone; one JSON object per line), like
``sbatch --parsable``. Errors go to stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..util.durations import parse_duration
from .spool import (
    LocalJob,
    allocate_id,
    job_dir,
    load_job,
    read_state,
    runner_alive,
    save_job,
    spool_dir,
)

PREFIX = "#LOCAL"


def directives(script: Path) -> list[str]:
    """The ``#LOCAL`` options of a script: read up to its first command, as schedulers do."""
    args: list[str] = []
    for line in script.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith(PREFIX + " "):
            args += shlex.split(stripped[len(PREFIX):])
        elif stripped and not stripped.startswith("#"):
            break
    return args


def _options() -> argparse.ArgumentParser:
    # no abbreviations: "--no 5" must not quietly mean --nodes
    p = argparse.ArgumentParser(prog="#LOCAL", add_help=False, exit_on_error=False,
                                allow_abbrev=False)
    p.add_argument("--name", default="job")
    p.add_argument("--walltime", default="3600")
    p.add_argument("--array")
    p.add_argument("--output")
    p.add_argument("--dependency")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--grace", type=int, default=10)
    return p


def submit(script: Path) -> str:
    """Queue ``script`` and start its runner; return the job id."""
    try:
        opts = _options().parse_args(directives(script))
        walltime = parse_duration(opts.walltime)
    except (argparse.ArgumentError, ValueError) as exc:
        raise SystemExit(f"localsched: bad #LOCAL directive: {exc}") from None
    if opts.nodes != 1:
        raise SystemExit(f"localsched: this machine is one node; {opts.nodes} were asked for")
    tasks: list[int | None] = [None]
    if opts.array:
        rng, _, step = opts.array.partition(":")
        start, _, end = rng.partition("-")
        tasks = list(range(int(start), int(end) + 1, int(step or 1)))
    after: list[str] = []
    kind = "afterok"
    if opts.dependency:
        kind, _, ids = opts.dependency.partition(":")
        after = [i for i in ids.split(":") if i]
    root = spool_dir()
    job_id = allocate_id(root)
    for dep in after:
        if load_job(root, dep) is None:
            raise SystemExit(f"localsched: dependency {dep} is not a local job")
    d = job_dir(root, job_id)
    job = LocalJob(job_id=job_id, name=opts.name, script=str(d / "script.sh"),
                   submit_dir=str(Path.cwd()), walltime_s=walltime, tasks=tasks,
                   output=opts.output or ("{name}.o{job_id}" + (".{array_index}"
                                                                 if opts.array else "")),
                   after=after, dependency=kind, gpus=opts.gpus, grace_s=opts.grace,
                   source=str(script))
    save_job(root, job)
    (d / "script.sh").write_bytes(script.read_bytes())
    with (d / "runner.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "abcitrain.localsched", "run", job_id],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "ABCITRAIN_LOCAL_SPOOL": str(root)})
    # Only the runner writes state.json; until it does, runner.pid says who will.
    (d / "runner.pid").write_text(str(proc.pid))
    return job_id


def stat(job_ids: list[str]) -> list[dict[str, object]]:
    """The state of each known job (unknown ids are left out)."""
    root = spool_dir()
    rows = []
    for job_id in job_ids:
        st = read_state(root, job_id)
        if st is None:
            continue
        elapsed = None
        if st.get("started"):
            elapsed = int((st.get("ended") or time.time()) - st["started"])
        rows.append({"job_id": job_id, "state": st.get("state"), "exit_code":
                     st.get("exit_code"), "elapsed": elapsed, "detail": st.get("detail", ""),
                     "task_elapsed": [t.get("elapsed", 0) for t in st.get("tasks", {}).values()],
                     "tasks": [{"index": index, "state": t.get("state"),
                                "exit_code": t.get("exit_code")}
                               for index, t in st.get("tasks", {}).items()]})
    return rows


def submitted() -> list[dict[str, str]]:
    """Every job in the spool with the script it was submitted from, ended ones too (the
    spool keeps them): a submission whose answer was lost asks for its script here."""
    root = spool_dir()
    rows = []
    for path in sorted((root / "jobs").glob("*/job.json")):
        job = load_job(root, path.parent.name)
        # a job whose submit died before it started the runner never runs: not taken
        started = (path.parent / "runner.pid").exists() or (path.parent / "state.json").exists()
        if job is not None and job.source and started:
            rows.append({"job_id": job.job_id, "script": job.source})
    return rows


def cancel(job_ids: list[str]) -> list[str]:
    """Signal each job's runner (only a process this scheduler started); return problems."""
    root = spool_dir()
    problems = []
    for job_id in job_ids:
        st = read_state(root, job_id)
        if st is None:
            problems.append(f"localsched: unknown job {job_id}")
            continue
        pid = st.get("runner_pid")
        if st.get("state") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            problems.append(f"localsched: job {job_id} has already ended ({st['state']})")
        elif isinstance(pid, int) and runner_alive(pid, job_id):
            os.kill(pid, signal.SIGTERM)
        else:
            problems.append(f"localsched: job {job_id} has no live runner")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Dispatch one local scheduler command."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m abcitrain.localsched submit SCRIPT | stat ID... | "
              "submitted | cancel ID... | run ID", file=sys.stderr)
        return 2
    cmd, rest = args[0], args[1:]
    if cmd == "submit" and len(rest) == 1:
        print(submit(Path(rest[0])))
        return 0
    if cmd == "stat":
        for row in stat(rest):
            print(json.dumps(row))
        return 0
    if cmd == "submitted" and not rest:
        for taken in submitted():
            print(json.dumps(taken))
        return 0
    if cmd == "cancel":
        problems = cancel(rest)
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    if cmd == "run" and len(rest) == 1:
        from .runner import run_job

        run_job(spool_dir(), rest[0])
        return 0
    print(f"localsched: unknown command {args!r}", file=sys.stderr)
    return 2

