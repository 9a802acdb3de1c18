"""The runner: one detached process per local job, from queued to a final state."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from .spool import TERMINAL, LocalJob, job_dir, load_job, read_state, write_json

POLL_S = 0.2


class _Cancelled(Exception):
    pass


class Runner:
    """Runs one job's tasks in order, enforcing walltime and honouring cancellation."""

    def __init__(self, root: Path, job: LocalJob) -> None:
        self.root = root
        self.job = job
        self.dir = job_dir(root, job.job_id)
        self.state: dict[str, Any] = {"state": "PENDING", "runner_pid": os.getpid(),
                                      "tasks": {}, "detail": ""}
        self.cancel_requested = False
        self.child: subprocess.Popen[bytes] | None = None

    def save(self) -> None:
        """Publish the current state."""
        write_json(self.dir / "state.json", self.state)

    def on_cancel(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM from `cancel`: stop the running task, then record CANCELLED."""
        self.cancel_requested = True

    def run(self) -> None:
        """Wait for dependencies, run every task, record the outcome."""
        signal.signal(signal.SIGTERM, self.on_cancel)
        signal.signal(signal.SIGINT, self.on_cancel)
        self.save()
        try:
            if not self.wait_for_dependencies():
                return
            self.state["started"] = time.time()
            self.state["state"] = "RUNNING"
            self.save()
            for task in self.job.tasks:
                outcome = self.run_task(task)
                self.state["tasks"][str(task)] = outcome
                self.save()
            finals = [t["state"] for t in self.state["tasks"].values()]
            for candidate in ("CANCELLED", "TIMEOUT", "FAILED"):
                if candidate in finals:
                    self.state["state"] = candidate
                    break
            else:
                self.state["state"] = "COMPLETED"
        except _Cancelled:
            self.state["state"] = "CANCELLED"
        finally:
            self.state["ended"] = time.time()
            codes = [t.get("exit_code") for t in self.state["tasks"].values()
                     if t.get("exit_code") is not None]
            self.state["exit_code"] = max(codes) if codes else None
            self.save()

    def wait_for_dependencies(self) -> bool:
        """Block until every dependency has ended; False if the job must not run."""
        pending = list(self.job.after)
        while pending:
            if self.cancel_requested:
                raise _Cancelled
            for dep in list(pending):
                st = read_state(self.root, dep)
                if st is None:
                    self.state.update(state="CANCELLED", detail=f"dependency {dep} is unknown")
                    return False
                if st.get("state") in TERMINAL:
                    pending.remove(dep)
                    if self.job.dependency == "afterok" and st["state"] != "COMPLETED":
                        self.state.update(state="CANCELLED", detail=f"dependency {dep} ended "
                                          f"{st['state']}, so afterok can never be met")
                        return False
            if pending:
                time.sleep(POLL_S)
        return True

    def run_task(self, task: int | None) -> dict[str, Any]:
        """Run the script once, as array task ``task``; return its outcome."""
        if self.cancel_requested:
            raise _Cancelled
        job = self.job
        out_path = job.output_for(task)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        # The task's own scratch folder, its TMPDIR, removed when the task ends however it
        # ends (a walltime kill included), as a cluster's per-job scratch is: what the job
        # script and its launcher put in $TMPDIR (node files, launch folders) goes with it.
        # Short (Open MPI puts unix sockets below it), and never inside another task's.
        base = scratch_base(os.environ)
        scratch = Path(tempfile.mkdtemp(prefix=f"abcitrain-{job.job_id}-", dir=base))
        node_file = scratch / "nodes"
        node_file.write_text("localhost\n")
        env = dict(os.environ)
        env.update(LOCAL_JOB_ID=job.job_id, LOCAL_JOB_NAME=job.name,
                   LOCAL_ARRAY_INDEX="" if task is None else str(task),
                   LOCAL_NODEFILE=str(node_file), LOCAL_SUBMIT_DIR=job.submit_dir,
                   LOCAL_GPUS=str(job.gpus), TMPDIR=str(scratch), LOCAL_TMPDIR_BASE=base)
        start = time.time()
        outcome: dict[str, Any] = {"started": start}
        try:
            with out_path.open("wb") as out:
                self.child = subprocess.Popen(
                    ["/bin/bash", job.script], cwd=job.submit_dir, env=env,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
                state = self.supervise(self.child, start + job.walltime_s)
                code = self.child.returncode
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if state == "RUNNING":
            state = "COMPLETED" if code == 0 else "FAILED"
        outcome.update(state=state, exit_code=code if code >= 0 else 128 - code,
                       elapsed=round(time.time() - start, 3))
        if state == "CANCELLED":
            self.state["tasks"][str(task)] = outcome     # it ran: its time is charged
            raise _Cancelled
        return outcome

    def supervise(self, child: subprocess.Popen[bytes], deadline: float) -> str:
        """Wait for the task; stop it at the deadline or on cancel."""
        while child.poll() is None:
            if self.cancel_requested:
                self.stop(child)
                return "CANCELLED"
            if time.time() >= deadline:
                self.stop(child)
                return "TIMEOUT"
            time.sleep(POLL_S)
        return "RUNNING"

    def stop(self, child: subprocess.Popen[bytes]) -> None:
        """SIGTERM the task's process group, SIGKILL after the grace period."""
        with contextlib.suppress(ProcessLookupError):     # the task may have just ended
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(self.job.grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def scratch_base(env: Mapping[str, str]) -> str:
    """Where tasks' scratch folders go: the TMPDIR the local cluster's first job was given
    (LOCAL_TMPDIR_BASE, passed on to every job submitted from inside a task), else TMPDIR,
    else the system's (/tmp). Never a task's own scratch, which a job submitted from inside the task
    inherits as its TMPDIR: it goes when that task ends, with anything made inside it."""
    for candidate in (env.get("LOCAL_TMPDIR_BASE"), env.get("TMPDIR")):
        if candidate and Path(candidate).is_dir():
            return candidate
    return tempfile.gettempdir()


def run_job(root: Path, job_id: str) -> None:
    """Entry point of the detached runner process."""
    job = load_job(root, job_id)
    if job is None:
        raise SystemExit(f"no local job {job_id} in {root}")
    Runner(root, job).run()
