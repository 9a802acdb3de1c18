"""The local scheduler's spool: job ids, job descriptions and state files."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


def spool_dir() -> Path:
    """The spool folder: $ABCITRAIN_LOCAL_SPOOL, else under the user data folder."""
    env = os.environ.get("ABCITRAIN_LOCAL_SPOOL")
    if env:
        return Path(env)
    from ..util.paths import data_dir

    return data_dir() / "local-spool"


@dataclass
class LocalJob:
    """What the runner needs to run a job; written once at submission."""

    job_id: str
    name: str
    script: str
    submit_dir: str
    walltime_s: int
    tasks: list[int | None]
    output: str
    after: list[str] = field(default_factory=list)
    dependency: str = "afterok"
    gpus: int = 0
    grace_s: int = 10
    #: The script as submitted (the path given to ``submit``): which submission this job is.
    source: str = ""

    def output_for(self, task: int | None) -> Path:
        """The output file of one task, relative paths taken from the submit folder."""
        text = (self.output.replace("{job_id}", self.job_id).replace("{name}", self.name)
                .replace("{array_index}", "" if task is None else str(task)))
        path = Path(text)
        return path if path.is_absolute() else Path(self.submit_dir) / path


def allocate_id(root: Path) -> str:
    """A new job id, unique across concurrent submitters (an flock-ed counter)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "next_id").open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        text = fh.read().strip()
        job_id = int(text) if text.isdigit() else 1
        fh.seek(0)
        fh.truncate()
        fh.write(str(job_id + 1))
        fh.flush()
        os.fsync(fh.fileno())
    return str(job_id)


def job_dir(root: Path, job_id: str) -> Path:
    """The folder of one job."""
    return root / "jobs" / job_id


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    """Read a JSON file written by ``write_json``; None if it is not there."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data


def save_job(root: Path, job: LocalJob) -> Path:
    """Create the job's folder and description."""
    d = job_dir(root, job.job_id)
    d.mkdir(parents=True)
    write_json(d / "job.json", asdict(job))
    return d


def load_job(root: Path, job_id: str) -> LocalJob | None:
    """Read a job's description."""
    data = read_json(job_dir(root, job_id) / "job.json")
    return LocalJob(**data) if data is not None else None


def runner_alive(pid: int, job_id: str) -> bool:
    """True if ``pid`` is still this job's runner (not a reused pid, not a zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if any(line.startswith("State:") and "Z" in line.split()[1:2]
           for line in status.splitlines()):
        return False
    return b"abcitrain.localsched" in cmdline and b"run" in cmdline and \
        job_id.encode() in cmdline


def read_state(root: Path, job_id: str) -> dict[str, Any] | None:
    """A job's state, corrected when its runner died without saying so."""
    d = job_dir(root, job_id)
    state = read_json(d / "state.json")
    if state is None:
        if not (d / "job.json").is_file():
            return None
        try:
            pid: int | None = int((d / "runner.pid").read_text())
        except (OSError, ValueError):
            pid = None
        if pid is None:
            return {"state": "PENDING", "runner_pid": None, "tasks": {}}
        state = {"state": "PENDING", "runner_pid": pid, "tasks": {}}
    if state.get("state") not in TERMINAL:
        pid = state.get("runner_pid")
        if isinstance(pid, int) and not runner_alive(pid, job_id):
            # The runner writes its final state before exiting; re-read to close that race.
            again = read_json(d / "state.json") or state
            if again.get("state") in TERMINAL:
                return again
            state = {**again, "state": "FAILED",
                     "detail": "the local runner is gone (killed, or the machine restarted)"}
    return state

