"""PBS Professional's job status: ``qstat -x -t -f -F json`` read into job states.

An array is judged from its subjobs; a finished job's end from its substate, exit status and
whether it ever started (tested against a live OpenPBS server's answers:
tests/data/samples/openpbs).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

from ...domain import JobState, JobStatus
from ..base import (
    TaskEnd,
    aggregate,
    first_failure_exit,
    hms_seconds,
    map_state,
    task_counts,
    task_failures,
    task_rows,
)

STATES = {
    "Q": JobState.PENDING, "W": JobState.PENDING, "T": JobState.PENDING,
    "M": JobState.PENDING,
    "H": JobState.HELD, "S": JobState.HELD, "U": JobState.HELD,
    "R": JobState.RUNNING, "E": JobState.RUNNING, "B": JobState.RUNNING,
    # F (finished) and X (finished subjob) are resolved from substate and Exit_status below.
}
FINISHED = ("F", "X")
SUBSTATE_TERMINATED = 91     # deleted (qdel), whatever exit status the job gave itself
EXIT_WALLTIME = -29          # JOB_EXEC_KILL_WALLTIME
SIGNAL_BASE = 256            # Exit_status 256+N: killed by signal N (qdel sends SIGTERM: 271)

def parse_qstat_json(text: str, job_ids: Sequence[str],
                     cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
    """Read ``qstat -x -t -f -F json``; jobs absent from it are left out.

    An array (``1234[].server``) is judged from its subjobs, never from the parent's own
    Exit_status: PBS copies that from whichever subjob changed state last
    (server/array_func.c), so a failed task could hide behind a later one that succeeded.
    """
    if not text.strip():
        return {}
    data = json.loads(text)
    jobs: dict[str, Any] = data.get("Jobs") or {}
    subjobs: dict[str, list[dict[str, Any]]] = {}
    for record in jobs.values():
        if record.get("array_id"):
            subjobs.setdefault(str(record["array_id"]), []).append(record)
    result = {}
    for job_id in job_ids:
        key, record = _find(jobs, job_id)
        if record is None:
            continue
        is_cancelled = job_id in cancelled
        if str(record.get("array", "")).lower() == "true":
            result[job_id] = _array_status(job_id, record, subjobs.get(key, []), is_cancelled)
        else:
            result[job_id] = _status(job_id, record, is_cancelled)
    return result


def _find(jobs: dict[str, Any], job_id: str) -> tuple[str, Any]:
    if job_id in jobs:
        return job_id, jobs[job_id]
    # "1234" or "1234.pbs1" may be asked for while qstat answers "1234.pbs1.local"
    seq = job_id.split(".")[0]
    for key, record in jobs.items():
        if key.split(".")[0] == seq:
            return key, record
    return job_id, None


def _started(record: dict[str, Any]) -> bool:
    # stime (start time), exec_host and resources_used are set when the job is run, never
    # before: a job deleted while queued, or by PBS after a failed dependency, has none
    return bool(record.get("stime") or record.get("exec_host")
                or record.get("resources_used"))


def _elapsed(record: dict[str, Any]) -> int | None:
    used = record.get("resources_used") or {}
    if used.get("walltime"):
        return hms_seconds(str(used["walltime"]))
    begun, ended = _pbs_time(record.get("stime")), _pbs_time(record.get("obittime"))
    if begun is not None and ended is not None:
        return max(0, int((ended - begun).total_seconds()))
    return None


def _pbs_time(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(text), "%a %b %d %H:%M:%S %Y") if text else None
    except ValueError:
        return None


def _status(job_id: str, record: dict[str, Any], cancelled: bool) -> JobStatus:
    raw = str(record.get("job_state", ""))
    substate = _int(record.get("substate"))
    elapsed = _elapsed(record)
    exit_code = _int(record.get("Exit_status"))
    comment = str(record.get("comment", ""))
    started = _started(record)
    warn: list[str] = []
    notes = [comment]
    if raw not in FINISHED:
        state = map_state(STATES, raw, warn)
        return JobStatus(job_id, state, raw, exit_code=exit_code, elapsed_s=elapsed,
                         detail="; ".join(n for n in [*notes, *warn] if n))
    if substate == SUBSTATE_TERMINATED:
        state = JobState.CANCELLED          # qdel: whatever the job's own exit status said
    elif exit_code is None:
        if not started:
            state = JobState.CANCELLED
            depend = str(record.get("depend", ""))
            notes.append(f"PBS deleted it before it ran: its dependency ({_dependency(depend)})"
                         " can no longer be met" if "after" in depend else
                         "deleted before it ran")
        elif cancelled:
            state = JobState.CANCELLED
        else:
            state = JobState.FAILED
            notes.append("PBS recorded no exit status")
    elif exit_code == 0:
        state = JobState.COMPLETED
    elif exit_code == EXIT_WALLTIME:
        state = JobState.TIMEOUT
    elif exit_code > SIGNAL_BASE and cancelled:
        state = JobState.CANCELLED
    else:
        state = JobState.FAILED
    ran = (float(elapsed or 0),) if started else ()
    return JobStatus(job_id, state, f"{raw}/{substate}" if substate is not None else raw,
                     exit_code=exit_code, elapsed_s=elapsed if started else None,
                     detail="; ".join(n for n in [*notes, *warn] if n),
                     task_elapsed=ran, final_usage=True)


def _array_status(job_id: str, parent: dict[str, Any], subjobs: list[dict[str, Any]],
                  cancelled: bool) -> JobStatus:
    raw = str(parent.get("job_state", ""))
    if not subjobs:
        # asked without -t, or the subjobs' history has expired: the parent cannot say how
        # its tasks ended, so a finished array is not judged (nor settled) from it
        warn: list[str] = []
        state = JobState.UNKNOWN if raw in FINISHED else map_state(STATES, raw, warn)
        return JobStatus(job_id, state, raw, detail="; ".join(
            ["PBS reported none of the array's tasks", *warn]))
    ends = [(str(sub.get("array_index", "")), _status(job_id, sub, cancelled))
            for sub in subjobs]
    tasks = [TaskEnd(index, st.state, st.exit_code) for index, st in ends]
    state = aggregate([st.state for _, st in ends])
    elapsed = [st.elapsed_s for _, st in ends if st.elapsed_s is not None]
    done = raw in FINISHED and all(st.state.terminal for _, st in ends)
    detail = task_failures(tasks) if state.terminal else task_counts([t.state for t in tasks])
    return JobStatus(job_id, state, raw, exit_code=first_failure_exit(tasks) if done else None,
                     elapsed_s=max(elapsed) if elapsed else None, detail=detail,
                     task_elapsed=tuple(e for _, st in ends for e in st.task_elapsed),
                     final_usage=done, tasks_seen=len(ends), task_states=task_rows(tasks))


def _dependency(depend: str) -> str:
    # "afterok:10.vm@vm" -> "afterok:10.vm": the server suffix is PBS's, not the user's
    return re.sub(r"@[^:,]+", "", depend)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
