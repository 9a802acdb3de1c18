"""PBS Professional (ABCI 3.0): qsub, ``qstat -x -f -F json``, qdel.

PBS Pro cannot be installed on the development machines; this backend is tested against
captured real outputs (tests/test_pbs_backend.py says which).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ..model import JobSpec, JobState, JobStatus
from ..util.durations import format_hms
from .base import Backend, Output, hms_seconds, map_state

STATES = {
    "Q": JobState.PENDING, "W": JobState.PENDING, "T": JobState.PENDING,
    "M": JobState.PENDING,
    "H": JobState.HELD, "S": JobState.HELD, "U": JobState.HELD,
    "R": JobState.RUNNING, "E": JobState.RUNNING, "B": JobState.RUNNING,
    # F (finished) and X (finished subjob) are resolved from Exit_status below.
}
EXIT_WALLTIME = -29          # JOB_EXEC_KILL_WALLTIME
SIGNAL_BASE = 256            # Exit_status 256+N: killed by signal N (qdel sends SIGTERM: 271)
_JOB_ID_RE = re.compile(r"^\s*([0-9]+(?:\[[0-9]*\])?(?:\.[A-Za-z0-9.-]+)?)\s*$", re.MULTILINE)


class PbsBackend(Backend):
    """PBS Professional's qsub/qstat/qdel."""

    name = "pbs"
    directive_prefix = "#PBS"
    template = "pbs.sh.j2"
    explanations = (
        (r"Job violates queue and/or server resource limits", "the job is over a limit of "
         "its queue (nodes, walltime, or jobs per user); `abcitrain check` lists the limits"),
        (r"Illegal attribute or resource value", "a resource value was refused (for "
         "example select= or walltime=); check the job spec and the profile's request"),
        (r"Unknown queue", "the queue does not exist: a wrong resource type, or a "
         "reservation that has ended or was never confirmed"),
        (r"Job rejected by all possible destinations", "no queue accepts this job as "
         "asked; check the resource type, nodes and walltime"),
        (r"Unknown Job Id", "the scheduler does not know this job id (a typo, or its "
         "history has expired)"),
        (r"Job has finished", "the job has already finished"),
        (r"Failed to save job/resv", "the PBS server could not save the job; try again, "
         "then ask the support desk"),
        (r"illegally formed job identifier", "that is not a PBS job id (e.g. 1234.pbs1)"),
    )

    def header_directives(self, spec: JobSpec, profile: object) -> list[str]:
        out = [f"-N {spec.name}", f"-l walltime={self.walltime_text(spec.walltime_s)}",
               "-j oe"]
        if spec.output:
            out.append(f"-o {spec.output.replace('{name}', spec.name)}")
        if spec.array is not None:
            out.append(f"-J {spec.array.start}-{spec.array.end}:{spec.array.step}")
        if spec.depends_on:
            out.append(f"-W depend={spec.dependency}:{':'.join(spec.depends_on)}")
        return out

    def walltime_text(self, seconds: int) -> str:
        return format_hms(seconds)

    def default_output(self, spec: JobSpec) -> str:
        return "{name}.o{job_id}" + (".{array_index}" if spec.array is not None else "")

    def job_id_for_output(self, job_id: str) -> str:
        return job_id.split(".")[0].split("[")[0]

    def submit_argv(self, script: str, extra_args: Sequence[str]) -> list[str]:
        return ["qsub", *extra_args, script]

    def parse_submit(self, out: Output) -> str:
        m = _JOB_ID_RE.search(out.stdout)
        if not m:
            raise ValueError(f"qsub printed no job id: {out.stdout!r}")
        return m.group(1)

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        # -x includes finished jobs, so one call answers for running and ended jobs alike.
        return ["qstat", "-x", "-f", "-F", "json", *job_ids]

    def parse_status(self, out: Output, job_ids: Sequence[str],
                     cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        return parse_qstat_json(out.stdout, job_ids, cancelled)

    def accounting_argvs(self, job_ids: Sequence[str]) -> list[list[str]]:
        return []     # `qstat -x` already answered for finished jobs

    def parse_accounting(self, outs: Sequence[Output], job_ids: Sequence[str],
                         cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        return {}

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["qdel", *job_ids]


def parse_qstat_json(text: str, job_ids: Sequence[str],
                     cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
    """Read ``qstat -x -f -F json``; jobs absent from it are left out."""
    if not text.strip():
        return {}
    data = json.loads(text)
    jobs: dict[str, Any] = data.get("Jobs") or {}
    result = {}
    for job_id in job_ids:
        record = jobs.get(job_id) or _by_prefix(jobs, job_id)
        if record is None:
            continue
        result[job_id] = _status(job_id, record, job_id in cancelled)
    return result


def _by_prefix(jobs: dict[str, Any], job_id: str) -> Any:
    # "1234" or "1234.pbs1" may be asked for while qstat answers "1234.pbs1.local"
    seq = job_id.split(".")[0]
    for key, record in jobs.items():
        if key.split(".")[0] == seq:
            return record
    return None


def _status(job_id: str, record: dict[str, Any], cancelled: bool) -> JobStatus:
    raw = str(record.get("job_state", ""))
    used = record.get("resources_used") or {}
    elapsed = hms_seconds(str(used.get("walltime", ""))) if used.get("walltime") else None
    exit_raw = record.get("Exit_status")
    exit_code = int(exit_raw) if exit_raw is not None else None
    warn: list[str] = []
    if raw in ("F", "X"):
        if exit_code is None:
            state = JobState.CANCELLED if cancelled else JobState.UNKNOWN
        elif exit_code == 0:
            state = JobState.COMPLETED
        elif exit_code == EXIT_WALLTIME:
            state = JobState.TIMEOUT
        elif exit_code > SIGNAL_BASE and cancelled:
            state = JobState.CANCELLED
        else:
            state = JobState.FAILED
    else:
        state = map_state(STATES, raw, warn)
    detail = "; ".join([str(record.get("comment", "")), *warn]).strip("; ")
    return JobStatus(job_id, state, raw, exit_code=exit_code, elapsed_s=elapsed, detail=detail,
                     task_elapsed=(float(elapsed),) if elapsed is not None else ())
