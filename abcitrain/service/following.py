"""Following submitted jobs: one scheduler query per cluster for every unfinished job
(``refresh``), then accounting for those that left the queue; cancel, release, and each
job's output file (``logs``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from ..backends import get_backend
from ..backends.base import Backend, Output
from ..batch.store import JobRecord, JobStore, StateUpdate
from ..domain import ArrayRange, JobState, JobStatus
from ..errors import AbcitrainError, FileMissing, InputError, Problem, TransportError
from ..points.ledger import Ledger
from ..transport import RunResult, Transport
from .common import existing_ledger, refusal, transport_for

# stderr of a status query that only says some ids are no longer in the queue
_MISSING_IDS = re.compile(r"Invalid job id specified|Unknown Job Id|Job has finished")


def refresh(records: Sequence[JobRecord], store: JobStore,
            transport: Transport | None = None,
            failures: dict[str, str] | None = None) -> list[JobRecord]:
    """Ask each scheduler ONCE about every unfinished job, confirm the ones that left the
    queue from accounting, store the answers, and return the updated records. With
    ``failures``, a cluster that cannot be asked is noted there (cluster -> why, one line)
    and the others are still asked; without it, its error is raised."""
    by_cluster: dict[tuple[str, str], list[JobRecord]] = {}
    ledger = existing_ledger()
    for rec in records:
        if not JobState(rec.state).terminal:
            by_cluster.setdefault((rec.cluster, rec.scheduler), []).append(rec)
    for (cluster, scheduler), recs in by_cluster.items():
        try:
            _refresh_cluster(cluster, scheduler, recs, store, transport, ledger)
        except AbcitrainError as exc:
            if failures is None:
                raise
            failures[cluster] = (str(exc).splitlines() or [type(exc).__name__])[0]
    latest = store.get_many([(r.cluster, r.job_id) for r in records])
    return [latest.get((r.cluster, r.job_id), r) for r in records]


def _refresh_cluster(cluster: str, scheduler: str, recs: list[JobRecord], store: JobStore,
                     transport: Transport | None, ledger: Ledger | None) -> None:
    """One cluster's part of ``refresh``."""
    backend = get_backend(scheduler)
    tr = transport or transport_for(cluster)
    ids = [r.job_id for r in recs]
    cancelled = frozenset(r.job_id for r in recs if r.cancel_requested)
    lag = backend.unstarted_unaccounted_after_s
    long_cancelled = frozenset(r.job_id for r in recs if lag is not None and r.cancelled_at
                               and time.time() - r.cancelled_at > lag)
    statuses = _query_queue(backend, tr, ids, cancelled)
    missing = [i for i in ids if i not in statuses]
    # Jobs the queue says have ended may lack their exit code and usage there (Slurm's
    # squeue): accounting has the final record.
    ended = [i for i in ids if i in statuses and statuses[i].state.terminal
             and not statuses[i].final_usage]
    if missing or ended:
        accounted = _query_accounting(backend, tr, missing + ended, cancelled,
                                      long_cancelled)
        statuses.update({i: st for i, st in accounted.items()
                         if i in missing or st.state is not JobState.UNKNOWN})
    answers = [(rec, _complete_or_waiting(rec, statuses[rec.job_id])) for rec in recs]
    store.update_states([StateUpdate(cluster, rec.job_id, st.state.value, st.exit_code,
                                     st.elapsed_s, st.detail, st.task_states)
                         for rec, st in answers])
    for rec, st in answers:
        if ledger is not None and st.state.terminal and st.final_usage:
            ledger.settle(cluster, rec.job_id, st.state.value, st.task_elapsed)


def _complete_or_waiting(rec: JobRecord, st: JobStatus) -> JobStatus:
    """An array whose final answer covers fewer tasks than it has is not final yet:
    accounting writes records as tasks end (Grid Engine flushes them every few seconds), and
    settling early would charge for some tasks only. A cancelled array may lack tasks that
    never started."""
    if not (rec.array_tasks and st.final_usage) or rec.cancel_requested:
        return st
    expected = ArrayRange.parse(rec.array_tasks).count
    if st.tasks_seen >= expected:
        return st
    return replace(st, state=JobState.UNKNOWN, final_usage=False, detail=(
        f"the scheduler has the final record of {st.tasks_seen} of {expected} tasks so far"))


def _query_queue(backend: Backend, tr: Transport, ids: Sequence[str],
                 cancelled: frozenset[str]) -> dict[str, JobStatus]:
    """One status query for all ``ids``. Where that query answers for finished jobs too
    (PBS's ``qstat -x``), ids missing from a batched answer are asked for again before they
    are called unknown: one OpenPBS version answers only the first of several ids, rc 0."""
    found: dict[str, JobStatus] = {}
    asking = list(ids)
    while asking:
        result = tr.run(backend.status_argv(asking))
        if result.returncode != 0 and not _MISSING_IDS.search(result.stderr):
            raise refusal(backend, result)
        got = backend.parse_status(Output(result.stdout, result.stderr, result.returncode),
                                   asking, cancelled)
        found.update(got)
        left = [i for i in asking if i not in got]
        # stop when nothing is missing, or when asking again taught nothing new
        if not backend.status_covers_finished or not got or len(left) == len(asking):
            break
        asking = left
    return found


def _query_accounting(backend: Backend, tr: Transport, ids: Sequence[str],
                      cancelled: frozenset[str],
                      long_cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
    outs, complaints = [], []
    for argv in backend.accounting_argvs(ids):
        res = tr.run(argv)
        outs.append(Output(res.stdout, res.stderr, res.returncode))
        if res.returncode != 0 and res.stderr.strip():
            complaints.append(res.stderr.strip().splitlines()[0])
    found = backend.parse_accounting(outs, ids, cancelled)
    why = "; ".join(dict.fromkeys(complaints))
    for job_id in ids:
        if job_id not in found and job_id in long_cancelled:
            # Grid Engine writes no accounting record for a job deleted while it waited
            found[job_id] = JobStatus(job_id, JobState.CANCELLED, "", detail=(
                "cancelled before it started (no accounting record)"), final_usage=True)
        elif job_id not in found:
            # Never "done" on absence alone: accounting may lag, or be switched off.
            found[job_id] = JobStatus(job_id, JobState.UNKNOWN, "", detail=(
                backend.forgotten + (f": {why}" if why else "")))
    return found


def _function_output(record: JobRecord, task: int | None, tr: Transport) -> str:
    """For a Python-function job (the executor's ``abcitrain.api.runner FOLDER``): what the
    function printed and its traceback, which the runner sends to submitit's own log files
    in FOLDER, each under a header naming it ("" for any other job)."""
    command = [str(c) for c in record.spec.get("command") or ()]
    if "abcitrain.api.runner" not in command[:-1]:
        return ""
    folder = Path(record.submit_dir) / command[command.index("abcitrain.api.runner") + 1]
    job = record.job_id if task is None else f"{record.job_id}_{task}"
    text = ""
    for what, suffix in (("output", "out"), ("errors and traceback", "err")):
        path = folder / f"{job}_0_log.{suffix}"
        try:
            found = tr.read_text(str(path))
        except FileMissing:
            continue
        if found:
            text += f"==> {path} (the function's {what}) <==\n"
            text += found if found.endswith("\n") else found + "\n"
    return text


def find_record(store: JobStore, job_id: str, cluster: str | None = None) -> JobRecord:
    """The one recorded job with this id; a clear error when none or several match."""
    found = store.find(job_id, cluster)
    if not found:
        raise InputError("no such job", [Problem(job_id, "abcitrain did not submit a job with "
                                                 "this id" + (f" on {cluster}" if cluster
                                                              else "") +
                                                 "; `abcitrain status` lists yours")])
    if len(found) > 1:
        raise InputError("ambiguous job id", [Problem(job_id, "submitted on several clusters "
                                                      f"({', '.join(r.cluster for r in found)})"
                                                      "; pass --cluster")])
    return found[0]


def _by_scheduler(records: Sequence[JobRecord]) -> dict[tuple[str, str], list[JobRecord]]:
    """Records grouped by (cluster, scheduler): one scheduler call serves each group."""
    groups: dict[tuple[str, str], list[JobRecord]] = {}
    for rec in records:
        groups.setdefault((rec.cluster, rec.scheduler), []).append(rec)
    return groups


def run_checked(backend: Backend, tr: Transport, argv: Sequence[str]) -> RunResult:
    """Run one job command; a refusal reaches the user in the scheduler's words."""
    result = tr.run(argv)
    if result.returncode != 0:
        raise refusal(backend, result)
    return result


def cancel(job_ids: Iterable[str], store: JobStore, cluster: str | None = None,
           transport: Transport | None = None) -> list[JobRecord]:
    """Cancel recorded jobs, one scheduler call per cluster."""
    records = [find_record(store, j, cluster) for j in job_ids]
    for (name, scheduler), recs in _by_scheduler(records).items():
        for rec in recs:
            store.mark_cancel(rec.cluster, rec.job_id)
        backend = get_backend(scheduler)
        run_checked(backend, transport or transport_for(name),
                 backend.cancel_argv([r.job_id for r in recs]))
    return records


def release(job_ids: Iterable[str], store: JobStore, cluster: str | None = None,
            transport: Transport | None = None) -> list[JobRecord]:
    """Release held jobs, one scheduler call per cluster."""
    records = [find_record(store, j, cluster) for j in job_ids]
    for (name, scheduler), recs in _by_scheduler(records).items():
        backend = get_backend(scheduler)
        if backend.hold_directive is None:
            raise InputError("cannot release", [Problem(r.job_id, f"the {scheduler} "
                                                        "scheduler holds no jobs")
                                                for r in recs])
        run_checked(backend, transport or transport_for(name),
                 backend.release_argv([r.job_id for r in recs]))
    return records


def output_path(record: JobRecord, task: int | None = None) -> str:
    """The file a job (or one array task) writes its output to."""
    backend = get_backend(record.scheduler)
    if record.array_tasks and task is None:
        raise InputError("which task?", [Problem(record.job_id, f"is an array job (tasks "
                                                 f"{record.array_tasks}); pass --task N")])
    if task is not None and not record.array_tasks:
        raise InputError("not an array job", [Problem(
            "--task", f"job {record.job_id} is not an array job: leave --task out")])
    if task is not None and task not in ArrayRange.parse(record.array_tasks or "1-1").indices():
        raise InputError("no such task", [Problem(
            "--task", f"job {record.job_id} has tasks {record.array_tasks}; there is no task "
            f"{task}")])
    text = backend.output_file(record.output, record.name, record.job_id, task)
    path = Path(text)
    return str(path if path.is_absolute() else Path(record.submit_dir) / path)


def logs(job_id: str, store: JobStore, task: int | None = None, cluster: str | None = None,
         transport: Transport | None = None) -> tuple[str, str]:
    """The path and text of a job's output file."""
    record = find_record(store, job_id, cluster)
    path = output_path(record, task)
    # remote: the output lies in the login node's copy of the folder the job was sent from
    tr = transport or transport_for(record.cluster, record.submit_dir)
    try:
        return path, tr.read_text(path) + _function_output(record, task, tr)
    except FileMissing as exc:
        if not JobState(record.state).terminal:
            record = refresh([record], store, tr)[0]     # it may have ended since
        state = JobState(record.state)
        at_end = get_backend(record.scheduler).output_appears_at_end
        if state is JobState.RUNNING and at_end:
            raise TransportError(f"{path} does not exist yet: {at_end}") from exc
        if not state.terminal:
            raise       # "does not exist (yet)": a job that has not started writing
        # an ended job's output that is not there was deleted or moved: not "not started"
        raise TransportError(f"{path}: no such file, though job {record.job_id} ended "
                             f"{state.value}: the output was deleted or moved, or the job "
                             "wrote it elsewhere (see its spec's output)") from exc

