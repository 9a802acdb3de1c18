"""The service layer: the only place that combines I/O (transport, job store) with the pure
parts (specs, profiles, checks, rendering, backends). CLI verbs call these functions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import getpass
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path

from ..backends import get_backend
from ..backends.base import Backend, Output
from ..batch.checks import retirement_problem
from ..batch.render import JobPlan
from ..batch.store import JobRecord, JobStore, StateUpdate
from ..errors import (
    AbcitrainError,
    InputError,
    Problem,
    ProgramMissing,
    SchedulerError,
    TransportError,
)
from ..model import ArrayRange, JobState, JobStatus
from ..points.budget import guard, load_budgets
from ..points.ledger import Charge, Ledger, now_iso
from ..points.tariffs import Quote, max_charge, units
from ..transport import LocalTransport, RunResult, Transport
from ..transport.ssh import SshTransport, sync_project
from ..transport.sync import Progress, SyncReport
from .common import existing_ledger, refusal, transport_for

# re-exported: callers of service.jobs load and check plans through it too
from .plans import load_plan as load_plan
from .plans import require_submittable as require_submittable

SCRIPTS_DIR = Path(".abcitrain") / "scripts"
# stderr of a status query that only says some ids are no longer in the queue
_MISSING_IDS = re.compile(r"Invalid job id specified|Unknown Job Id|Job has finished")


@dataclass(frozen=True)
class Submission:
    """The outcome of a submission (job_id is None for a dry run)."""

    job_id: str | None
    argv: tuple[str, ...]
    script_path: str
    submit_dir: str
    max_charge: Decimal | None = None
    quote: Quote | None = None
    #: Warnings found at submission (a reservation that has not started yet, ...).
    warnings: tuple[Problem, ...] = ()
    #: The charge if the job overruns its walltime by all the profile's walltime_overrun
    #: (None when the profile declares none: then max_charge is the maximum).
    overrun_charge: Decimal | None = None
    #: What could not be recorded after the scheduler accepted the job (it IS submitted).
    unrecorded: tuple[str, ...] = ()
    #: For a remote cluster: what was uploaded to the login node's copy of the project.
    uploaded: SyncReport | None = None


def estimate(plan: JobPlan, when: dt.date | None = None,
             overrun_s: int = 0) -> tuple[Decimal, Quote] | None:
    """The job's charge at its full walltime (plus ``overrun_s``) at today's tariff; None
    for a cluster with no prices and for a job in a reservation (the reservation was charged
    when it was booked)."""
    if not plan.profile.data.get("tariffs") or plan.spec.reservation:
        return None
    return max_charge(plan.spec, plan.profile, when or dt.date.today(), overrun_s)


def overrun_charge(plan: JobPlan, when: dt.date | None = None) -> Decimal | None:
    """The charge if the job overruns its walltime by the profile's ``walltime_overrun``;
    None when the profile declares none (the walltime's charge is then the maximum) or the
    job has no price of its own."""
    overrun_s = int(plan.profile.data.get("walltime_overrun") or 0)
    with_overrun = estimate(plan, when, overrun_s) if overrun_s else None
    return with_overrun[0] if with_overrun is not None else None


def script_path_for(plan: JobPlan, submit_dir: str) -> str:
    """Where the rendered script is stored before submission (kept for the record)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return str(Path(submit_dir) / SCRIPTS_DIR / f"{plan.spec.name}-{stamp}-{os.getpid()}.sh")


def submit(plan: JobPlan, store: JobStore | None, transport: Transport | None = None,
           submit_dir: str | None = None, dry_run: bool = False,
           progress: Progress | None = None) -> Submission:
    """Submit the planned job: write its script, run the scheduler's submit, record it.

    A dry run returns the same Submission without writing, running or recording anything.
    """
    require_submittable(plan)
    retired = retirement_problem(plan.profile, dt.date.today(),
                                 "warning" if dry_run else "error")
    if retired is not None and not dry_run:
        raise InputError(f"job {plan.spec.name!r} cannot run on {plan.profile.name!r}",
                         [retired])
    found = [retired] if retired is not None else []
    found += reservation_problems(plan, store, transport)
    submit_dir = submit_dir or str(Path.cwd())
    if transport is None or isinstance(transport, LocalTransport):
        found += workdir_problems(plan, submit_dir)
    require_submittable(plan, found)
    script_path = script_path_for(plan, submit_dir)
    argv = tuple(plan.submit_argv(script_path))
    est = estimate(plan)
    charge, quote = est if est is not None else (None, None)
    over_charge = overrun_charge(plan)
    budgets = load_budgets()
    if charge is not None and budgets:
        # a dry run reads the ledger but never creates it
        guard(existing_ledger() if dry_run else Ledger(), budgets, plan.spec.group, charge,
              f"job {plan.spec.name!r}")
    if dry_run:
        return Submission(None, argv, script_path, submit_dir, charge, quote, tuple(found),
                          over_charge)
    # the files that will record the job must be sound BEFORE the scheduler has it
    if store is not None:
        store.verify()
    if charge is not None:
        Ledger().verify()
    transport = transport or transport_for(plan.profile.name, submit_dir)
    backend = get_backend(plan.profile.scheduler)
    digest = _digest(plan, submit_dir)
    uploaded = None
    earlier = _earlier_submission(store, backend, transport, plan.profile.name, digest)
    if earlier is not None:
        # an earlier attempt's answer was lost, but the scheduler has its job: that job
        # IS this submission, never a second one
        script_path, job_id = earlier
        argv = tuple(plan.submit_argv(script_path))
        found.append(Problem("submit", f"an earlier submission of this job (its answer was "
                             f"lost) is job {job_id}: not submitted again", "warning"))
    else:
        if isinstance(transport, SshTransport):
            # the login node's copy of the project gets what changed here, then the script
            uploaded = sync_project(transport, progress)
        transport.write_text(script_path, plan.script, 0o755)
        if store is not None:
            store.add_pending(script_path, plan.profile.name, digest)
        job_id = _run_submit(backend, transport, argv, submit_dir, script_path, store)
    # From here on the job IS submitted: whatever fails is reported with its id, never
    # raised past it (a user who sees no id submits again).
    unrecorded: list[str] = []
    if store is not None:
        spec = plan.spec
        output = spec.output or backend.default_output(spec)
        with _noting(unrecorded, "the job store (`abcitrain status` will not list it)"):
            store.add(JobRecord(
            cluster=plan.profile.name, job_id=job_id, scheduler=plan.profile.scheduler,
            name=spec.name, submitted_at=time.time(), submit_dir=submit_dir,
            script_path=script_path, output=output.replace("{name}", spec.name),
                array_tasks=str(spec.array) if spec.array else None, state="PENDING",
                exit_code=None, elapsed_s=None, detail="", cancel_requested=False,
                spec=_spec_dict(plan)))
            store.drop_pending(script_path)
    if charge is not None and quote is not None:
        spec = plan.spec
        with _noting(unrecorded, f"the points ledger (its {charge} points are not counted)"):
            Ledger().record(Charge(
                cluster=plan.profile.name, ref=job_id, kind="job", grp=spec.group or "",
                usr=getpass.getuser(), name=spec.name, submitted_at=now_iso(), quote=quote,
                units=units(spec), tasks=spec.array.count if spec.array else 1,
                requested_s=spec.walltime_s, estimate=charge))
    return Submission(job_id, argv, script_path, submit_dir, charge, quote, tuple(found),
                      over_charge, tuple(unrecorded), uploaded)


@contextlib.contextmanager
def _noting(unrecorded: list[str], what: str) -> Iterator[None]:
    """Record a failure to write ``what`` instead of raising it."""
    try:
        yield
    except (AbcitrainError, OSError, sqlite3.Error) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        unrecorded.append(f"not recorded in {what}: {first}")


def workdir_problems(plan: JobPlan, submit_dir: str) -> list[Problem]:
    """The job starts with ``cd WORKDIR`` (relative to the submit folder): when this machine
    sees the submit folder, a workdir that is missing, not a folder, or a symlink loop is
    an error now rather than a failed job later."""
    if not plan.spec.workdir:
        return []
    path = Path(submit_dir) / plan.spec.workdir
    try:
        path.resolve(strict=True)
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
            return [Problem("workdir", f"{plan.spec.workdir!r} is a symlink loop")]
        return [Problem("workdir", f"{plan.spec.workdir!r} does not exist (from {submit_dir});"
                        " the job would fail at its first line: create it first")]
    if not path.is_dir():
        return [Problem("workdir", f"{plan.spec.workdir!r} is not a folder")]
    return []


def reservation_problems(plan: JobPlan, store: JobStore | None,
                         transport: Transport | None = None) -> list[Problem]:
    """Problems of a job in a reservation, asking the scheduler about the reservation and
    counting the nodes my running jobs (refreshed) already hold in it."""
    if not plan.spec.reservation:
        return []
    from ..reserve.jobfit import running_nodes_in
    from .reservations import job_problems

    tr = transport or transport_for(plan.profile.name)
    mine = jobs_in_reservations(store, plan.profile.name, {plan.spec.reservation},
                                active_only=True, transport=tr) if store is not None else {}
    return job_problems(plan, running_nodes_in(mine.get(plan.spec.reservation, []),
                                               plan.spec.reservation),
                        dt.datetime.now(dt.UTC), tr)


def jobs_in_reservations(store: JobStore, cluster: str, resv_ids: set[str],
                         active_only: bool = False, transport: Transport | None = None,
                         limit: int = 5000) -> dict[str, list[JobRecord]]:
    """My recorded jobs in these reservations by reservation id, refreshed (one queue
    query for all of them)."""
    mine = [r for r in store.recent(limit=limit, cluster=cluster, active_only=active_only)
            if r.spec.get("reservation") in resv_ids]
    found: dict[str, list[JobRecord]] = {}
    for rec in refresh(mine, store, transport) if mine else []:
        found.setdefault(rec.spec["reservation"], []).append(rec)
    return found


def _digest(plan: JobPlan, submit_dir: str) -> str:
    """What makes two submissions the same job: the cluster, the folder and the spec."""
    import hashlib
    import json

    text = json.dumps({"cluster": plan.profile.name, "dir": submit_dir,
                       "spec": _spec_dict(plan)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _scheduler_path(transport: Transport, path: str) -> str:
    """``path`` as the scheduler's host sees it."""
    return transport.remote_path(path) if isinstance(transport, SshTransport) else path


def _submitted(backend: Backend, transport: Transport) -> dict[str, str]:
    """Script path -> job id of my jobs the scheduler knows (one query)."""
    argv = backend.submitted_argv()
    assert argv is not None
    result = _run_for(backend, transport, argv)
    return backend.parse_submitted(Output(result.stdout, result.stderr, result.returncode))


def _earlier_submission(store: JobStore | None, backend: Backend, transport: Transport,
                        cluster: str, digest: str) -> tuple[str, str] | None:
    """(script path, job id) of an earlier submission of the same job whose answer was
    lost and which the scheduler has; None when there is none (those it does not have
    never reached it and are forgotten)."""
    if store is None:
        return None
    earlier = store.pending_for(cluster, digest)
    if not earlier:
        return None
    if backend.submitted_argv() is None:
        for script in earlier:
            store.drop_pending(script)
        return None
    try:
        known = _submitted(backend, transport)
    except TransportError as exc:
        raise TransportError(f"an earlier submission of this job did not get its answer, "
                             f"and the scheduler cannot be asked whether it took it ({exc}). "
                             "Nothing was submitted: try again when the connection "
                             "works") from None
    for script in earlier:
        job_id = known.get(_scheduler_path(transport, script))
        if job_id is not None:
            return script, job_id
    for script in earlier:
        store.drop_pending(script)
    return None


def _run_submit(backend: Backend, transport: Transport, argv: Sequence[str], submit_dir: str,
                script_path: str, store: JobStore | None) -> str:
    """Run the submit command and return the job id. When the connection to a remote login
    node is lost on the way, ask the scheduler (reconnecting) for the job this script made
    before saying anything: exactly one job either way."""
    try:
        result = transport.run(argv, cwd=submit_dir)
    except ProgramMissing:
        if store is not None:
            store.drop_pending(script_path)      # it certainly did not run
        raise
    except TransportError as lost:
        if not isinstance(transport, SshTransport) or backend.submitted_argv() is None:
            raise
        try:
            known = _submitted(backend, transport)
        except (TransportError, SchedulerError):
            raise TransportError(f"{lost}. Whether the scheduler took the job is not known: "
                                 "submitting the same spec again asks it first and never "
                                 "makes a second job") from None
        job_id = known.get(_scheduler_path(transport, script_path))
        if job_id is None:
            if store is not None:
                store.drop_pending(script_path)
            raise TransportError(f"{lost}; the scheduler has no job from this submission: "
                                 "nothing was submitted or charged, submit again") from None
        return job_id
    if result.returncode != 0:
        if store is not None:
            store.drop_pending(script_path)
        raise refusal(backend, result)
    try:
        return backend.parse_submit(Output(result.stdout, result.stderr, result.returncode))
    except ValueError as exc:
        raise SchedulerError(tuple(argv), result.returncode, result.stdout, result.stderr,
                             f"the job may have been submitted but its id could not be read "
                             f"({exc}); check the queue before submitting again") from None


def _spec_dict(plan: JobPlan) -> dict[str, object]:
    data = asdict(plan.spec)
    data["array"] = str(plan.spec.array) if plan.spec.array else None
    return data


def refresh(records: Sequence[JobRecord], store: JobStore,
            transport: Transport | None = None) -> list[JobRecord]:
    """Ask each scheduler ONCE about every unfinished job, confirm the ones that left the
    queue from accounting, store the answers, and return the updated records."""
    by_cluster: dict[tuple[str, str], list[JobRecord]] = {}
    ledger = existing_ledger()
    for rec in records:
        if not JobState(rec.state).terminal:
            by_cluster.setdefault((rec.cluster, rec.scheduler), []).append(rec)
    for (cluster, scheduler), recs in by_cluster.items():
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
    latest = store.get_many([(r.cluster, r.job_id) for r in records])
    return [latest.get((r.cluster, r.job_id), r) for r in records]


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
                "not in the queue and not (yet) in accounting" + (f": {why}" if why else "")))
    return found


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


def _run_for(backend: Backend, tr: Transport, argv: Sequence[str]) -> RunResult:
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
        _run_for(backend, transport or transport_for(name),
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
        _run_for(backend, transport or transport_for(name),
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
    text = (record.output.replace("{job_id}", backend.job_id_for_output(record.job_id))
            .replace("{array_index}", "" if task is None else str(task)))
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
        return path, tr.read_text(path)
    except TransportError as exc:
        if not JobState(record.state).terminal:
            record = refresh([record], store, tr)[0]     # it may have ended since
        state = JobState(record.state)
        if not state.terminal and record.scheduler == "pbs" and state is JobState.RUNNING:
            # the ABCI 3.0 guide: "The output file will be created after the job completes"
            raise TransportError(f"{path} does not exist yet: PBS copies a job's output there "
                                 "when it ends; to read it while it runs, add `-k oe` to "
                                 "extra_directives (it then stays in your home folder as "
                                 "NAME.oSEQUENCE and output: is not used)") from exc
        if not state.terminal:
            raise       # "does not exist (yet)": a job that has not started writing
        # an ended job's output that is not there was deleted or moved: not "not started"
        raise TransportError(f"{path}: no such file, though job {record.job_id} ended "
                             f"{state.value}: the output was deleted or moved, or the job "
                             "wrote it elsewhere (see its spec's output)") from exc

