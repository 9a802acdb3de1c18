"""Submitting a job: the plan's script written where the scheduler reads it, the budget
guard, exactly one submission however the connection behaves, the charge and the record.
The only place (with ``following``) that combines I/O with the pure parts for a job; CLI
verbs and the Python API call it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import getpass
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from ..backends import get_backend
from ..backends.base import Backend, Output
from ..batch.checks import retirement_problem
from ..batch.render import JobPlan
from ..batch.store import JobRecord, JobStore
from ..domain import JobSpec
from ..errors import (
    AbcitrainError,
    InputError,
    Problem,
    ProgramMissing,
    SchedulerError,
    TransportError,
)
from ..points.budget import guard, load_budgets
from ..points.ledger import Charge, Ledger, now_iso
from ..points.tariffs import Quote, max_charge, units
from ..transport import LocalTransport, Transport
from ..transport.ssh import SshTransport, sync_project
from ..transport.sync import Progress, SyncReport
from . import once
from .common import existing_ledger, refusal, transport_for
from .following import refresh

# re-exported: callers of service.submitting load and check plans through it too
from .plans import load_plan as load_plan
from .plans import require_submittable as require_submittable

SCRIPTS_DIR = Path(once.SCRIPTS_DIR)


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
    return str(Path(submit_dir) / SCRIPTS_DIR / once.new_script_name(plan.spec.name))


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
        found += output_folder_problems(plan.spec, submit_dir)
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
    transport = transport or transport_for(plan.profile.name, submit_dir)
    make_output_folders(plan.spec, transport, submit_dir)
    # the files that will record the job must be sound BEFORE the scheduler has it
    if store is not None:
        store.verify()
    if charge is not None:
        Ledger().verify()
    backend = get_backend(plan.profile.scheduler)
    digest = _digest(plan, submit_dir)
    uploaded = None
    earlier = once.earlier_submission(store, backend, transport, plan.profile.name, digest)
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
        transport.write_text(script_path, once.stamp(plan.script, script_path), 0o755)
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


def output_folders(spec: JobSpec, submit_dir: str) -> tuple[tuple[str, str], ...]:
    """The folders the scheduler writes the job's output and error files in, each with
    its spec field, as paths on the submitting side (relative paths are from the submit
    folder, where the scheduler's directives are read). A folder named after the job id or
    the array index cannot be known before the job exists and is left out; ``{name}`` is
    the job's name."""
    folders: dict[str, str] = {}
    for field, path in (("output", spec.output), ("error", spec.error)):
        if not path:
            continue
        folder = path.replace("{name}", spec.name).rpartition("/")[0]
        if not folder or "{" in folder:
            continue
        full = folder if folder.startswith("/") else f"{submit_dir.rstrip('/')}/{folder}"
        folders.setdefault(full, field)
    return tuple((field, folder) for folder, field in folders.items())


def output_folder_problems(spec: JobSpec, submit_dir: str) -> list[Problem]:
    """An output folder that cannot be made here because a file stands in its way: an
    error now, not a job whose output is lost."""
    found = []
    for field, folder in output_folders(spec, submit_dir):
        path = Path(folder)
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            found.append(Problem(field, f"its folder {folder} cannot be made: {existing} is "
                                 "a file"))
    return found


def make_output_folders(spec: JobSpec, transport: Transport, submit_dir: str) -> None:
    """Create the job's output folders where the scheduler runs, before it has the job.

    No scheduler creates them: Slurm fails the job before its first line with no output
    at all (ExitCode 0:53, "Could not open stdout file"), Grid Engine holds it in error
    and PBS leaves its files in the spool's undelivered folder. A copied project lacks them
    more often than not: an empty folder, or one holding only job logs, is not uploaded.
    """
    for field, folder in output_folders(spec, submit_dir):
        if isinstance(transport, SshTransport):
            transport.makedirs(transport.remote_path(folder))
            continue
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"job {spec.name!r} cannot write its {field}", [Problem(
                field, f"its folder {folder} cannot be made ({exc.strerror or exc}): the "
                "scheduler would lose the job's output")]) from None


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
        if not isinstance(transport, SshTransport):
            raise
        return _after_a_lost_answer(lost, backend, transport, script_path, store)
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


def _after_a_lost_answer(lost: TransportError, backend: Backend, transport: Transport,
                         script_path: str, store: JobStore | None) -> str:
    """The connection dropped while the submit command ran: ask the scheduler (over a new
    connection) for the job this script made, and the job for its start mark, before
    saying anything."""
    promise = ("submitting the same spec again first asks the scheduler for the job and "
               "looks for its start mark, and submits only if neither shows it")
    if not once.can_ask(backend):
        promise = (f"the {backend.name} scheduler cannot be asked which jobs it holds: check "
                   "its queue before submitting again (a job that has started is found by "
                   "its start mark)")
    try:
        once.wait_for_submit(transport, script_path)
        found = once.find_job(backend, transport, [script_path],
                              None if once.can_ask(backend) else {})
    except (TransportError, SchedulerError):
        raise TransportError(f"{lost}. Whether the scheduler took the job is not known: "
                             f"{promise}") from None
    if found is not None:
        return found[1]
    if not once.can_ask(backend):
        raise TransportError(f"{lost}. Whether the scheduler took the job is not known: "
                             f"{promise}") from None
    if store is not None:
        store.drop_pending(script_path)
    raise TransportError(f"{lost}; the scheduler has no job from this submission: "
                         "nothing was submitted or charged, submit again") from None


def _spec_dict(plan: JobPlan) -> dict[str, object]:
    data = asdict(plan.spec)
    data["array"] = str(plan.spec.array) if plan.spec.array else None
    return data


