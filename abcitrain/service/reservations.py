"""Reservations with I/O: book, list, show and cancel through the scheduler, charge and refund
in the ledger, and check a job against the reservation it names.

Every booking is checked against the rules first (all problems at once, exit 2, nothing run
or charged), then against the group's budget; the charge is recorded only once the scheduler
has granted the reservation, and a refund only once it has deleted it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import re
from dataclasses import dataclass, replace
from decimal import Decimal

from ..backends import get_backend
from ..backends.base import Output
from ..backends.reservations import Reservation, ReservationBackend
from ..batch.checks import retirement_problem
from ..batch.render import JobPlan
from ..batch.spec import GROUP_RE
from ..domain import ClusterProfile
from ..errors import InputError, Problem, SchedulerError, TransportError
from ..points.budget import guard, load_budgets
from ..points.ledger import Charge, Ledger, now_iso
from ..points.tariffs import from_e4, quote, round_points
from ..reserve.jobfit import fit_problems
from ..reserve.planner import RequestPlan, plan_request
from ..reserve.rules import DAY_HOURS, ReservationRequest, ReservationRules, rules_of, window
from ..transport import RunResult, Transport
from ..util.durations import format_hms
from ..util.words import plural
from .common import existing_ledger, refusal, transport_for

# a job name may hold '+'; a reservation name (a Slurm id, a -N value) may not
NAME_RE = r"[A-Za-z][A-Za-z0-9_.-]{0,62}"
#: A reservation asked to start "now" starts this long after the command is built, so the
#: scheduler (Grid Engine refuses a start in the past) still sees it in the future.
NOW_LEAD = dt.timedelta(seconds=5)


@dataclass(frozen=True)
class Booked:
    """The outcome of a booking (resv_id is None for a dry run)."""

    resv_id: str | None
    argv: tuple[str, ...]
    plan: RequestPlan


def backend_for(profile: ClusterProfile, *verbs: str) -> ReservationBackend:
    """The reservation reader of the profile's scheduler with the profile's commands; exit 2
    when it takes no reservations or names no command for one of ``verbs``."""
    data = profile.data.get("reservations") or {}
    backend = get_backend(profile.scheduler).reservations({
        verb: data[verb] for verb in ("list", "show", "delete") if data.get(verb)})
    if backend is None:
        raise InputError(f"cluster {profile.name!r} takes no reservations", [Problem(
            "cluster", f"the {profile.scheduler} scheduler takes no advance reservations")])
    missing = [v for v in verbs if v not in backend.commands]
    if missing:
        raise InputError(f"cluster {profile.name!r} names no reservation command for "
                         f"{', '.join(missing)}", [Problem(
                             f"reservations.{verb}", "the profile names no command (an argv "
                             "list; {id} stands for the reservation id)") for verb in missing])
    return backend


def create_argv(profile: ClusterProfile, rules: ReservationRules, req: ReservationRequest,
                name: str, group: str | None, user: str) -> list[str]:
    """The create command from the profile's templates (argv items; no shell is involved)."""
    data = profile.data["reservations"]
    if not data.get("create"):
        raise InputError(f"cluster {profile.name!r} cannot book reservations", [Problem(
            "reservations.create", "the profile names no create command")])
    win = window(rules, req)
    start, end = win.start, win.end
    if any("{start" in t and "%S" not in t for t in data["create"]) and start.second:
        # written to the minute (pbs_rsub -R CCYYMMDDhhmm): the next whole minute, never one
        # already begun, which the scheduler refuses as a start in the past
        lead = dt.timedelta(seconds=60 - start.second) - dt.timedelta(
            microseconds=start.microsecond)
        start, end = start + lead, end + lead
    values = {"name": name, "nodes": req.nodes, "days": _days_text(req.days),
              "group": group or "", "type": req.resource, "user": user,
              "start": start, "end": end,
              "duration": format_hms(int((end - start).total_seconds()))}
    templates = [*data["create"], *(data.get("type_args") or {}).get(req.resource, []),
                 *(data.get("group_args") or [] if group else [])]
    return [t.format(**values) for t in templates]


def _days_text(days: Decimal) -> str:
    return str(int(days)) if days == int(days) else str(days.normalize())


def validate_names(profile: ClusterProfile, name: str, group: str | None) -> list[Problem]:
    """Problems with a reservation's name and group (they reach the scheduler's argv)."""
    found = []
    if not re.fullmatch(NAME_RE, name):
        found.append(Problem("name", f"{name!r}: start with a letter; letters, digits, _ . - "
                             "only; at most 63 characters"))
    if group is not None and not re.fullmatch(GROUP_RE, group):
        found.append(Problem("group", f"{group!r}: a group is letters, digits, _ . -"))
    if group is None and profile.group_required:
        found.append(Problem("group", f"is required on {profile.name!r}: reservations are "
                             "charged to a group"))
    return found


def create(profile: ClusterProfile, req: ReservationRequest, name: str, group: str | None,
           now: dt.datetime, transport: Transport | None = None,
           dry_run: bool = False) -> Booked:
    """Check, price, guard and book a reservation; record its charge in the ledger."""
    rules = rules_of(profile)
    backend = backend_for(profile, "show", "delete")
    plan = plan_request(rules, profile, req, now)
    problems = validate_names(profile, name, group) + plan.problems
    retired = retirement_problem(profile, now.date())
    if retired is not None and not dry_run:
        problems.append(retired)
    if problems:
        raise InputError(f"reservation {name!r} cannot be booked on {profile.name!r}"
                         + (" (`abcitrain reserve plan` shows what would fit)"
                            if plan.alternatives else ""), problems)
    booked_on = now.astimezone(rules.tz).date()
    if profile.data.get("tariffs") and plan.points is None:
        quote(profile, req.resource, "reserved", booked_on)   # raises: says what price is missing
    user = getpass.getuser()
    argv = tuple(create_argv(profile, rules, req, name, group, user))
    budgets = load_budgets()
    if plan.points is not None and budgets:
        guard(existing_ledger() if dry_run else Ledger(), budgets, group, plan.points,
              f"reservation {name!r}", hint="Book fewer nodes or days, or raise the budget "
              "in abcitrain.yaml.")
    if dry_run:
        return Booked(None, argv, plan)
    tr = transport or transport_for(profile.name)
    result = tr.run(argv)
    if result.returncode != 0:
        raise refusal(backend, result)
    try:
        resv_id = backend.parse_create(_out(result))
    except ValueError as exc:
        raise SchedulerError(argv, result.returncode, result.stdout, result.stderr,
                             f"the reservation may have been made but its id could not be "
                             f"read ({exc}); check `abcitrain reserve list`") from None
    _require_granted(profile, backend, tr, resv_id, req, result)
    if plan.points is not None:
        q = quote(profile, req.resource, "reserved", booked_on)
        Ledger().record(Charge(
            cluster=profile.name, ref=resv_id, kind="reservation", grp=group or "", usr=user,
            name=name, submitted_at=now_iso(), quote=q, units=req.nodes, tasks=1,
            requested_s=int(plan.window.days * DAY_HOURS * 3600), estimate=plan.points,
            source="reserve", actual=plan.points, state="BOOKED"))
    return Booked(resv_id, argv, plan)


def _require_granted(profile: ClusterProfile, backend: ReservationBackend, tr: Transport,
                     resv_id: str, req: ReservationRequest, booked: RunResult) -> None:
    """Read the new reservation back; one with fewer nodes than asked for is deleted.

    Slurm, asked for more nodes than a partition has, grants what there is without a word
    (seen: NodeCnt=5 on a 2-node partition gave 2); nothing is charged for such a booking."""
    if not backend.grants_at_once:
        return
    try:
        granted = lookup(profile, resv_id, tr)
    except (SchedulerError, TransportError):
        return          # cannot read it back: charged as booked
    if granted is None or granted.nodes is None or granted.nodes >= req.nodes:
        return
    deleted = tr.run(backend.delete_argv(resv_id))
    raise SchedulerError(booked.argv, booked.returncode, booked.stdout, booked.stderr,
                         f"the scheduler granted {resv_id} with {granted.nodes} of the "
                         f"{plural(req.nodes, 'node')} asked for; "
                         + ("it was deleted and nothing was charged" if deleted.returncode == 0
                            else f"deleting it failed ({deleted.stderr.strip()}): delete it "
                            "yourself") + f". Ask for at most {plural(granted.nodes, 'node')}.")


def _out(result: RunResult) -> Output:
    return Output(result.stdout, result.stderr, result.returncode)


def list_reservations(profile: ClusterProfile,
                      transport: Transport | None = None) -> list[Reservation]:
    """Every reservation the scheduler shows."""
    backend = backend_for(profile, "list")
    result = (transport or transport_for(profile.name)).run(backend.list_argv())
    if result.returncode != 0:
        raise refusal(backend, result)
    return backend.parse_list(_out(result), rules_of(profile).tz)


def show(profile: ClusterProfile, resv_id: str,
         transport: Transport | None = None) -> Reservation:
    """One reservation in full; exit 2 when the scheduler does not know it."""
    found = lookup(profile, resv_id, transport)
    if found is None:
        raise InputError("no such reservation", [Problem(resv_id, f"is not known to "
                                                         f"{profile.name}'s scheduler")])
    return found


def lookup(profile: ClusterProfile, resv_id: str,
           transport: Transport | None = None) -> Reservation | None:
    """One reservation, or None when the scheduler says it does not exist."""
    if resv_id.startswith("-") or not re.fullmatch(profile.reservation_pattern, resv_id):
        raise InputError("not a reservation id", [Problem(
            resv_id, f"reservation ids on {profile.name} look like "
            f"{profile.reservation_pattern}")])
    backend = backend_for(profile, "show")
    result = (transport or transport_for(profile.name)).run(backend.show_argv(resv_id))
    out = _out(result)
    if result.returncode != 0 and not backend.is_missing(out):
        raise refusal(backend, result)
    found = backend.parse_show(out, rules_of(profile).tz, resv_id)
    return replace(found, resv_id=resv_id) if found is not None and not found.resv_id \
        else found


@dataclass(frozen=True)
class Cancelled:
    """A cancelled reservation and the refund recorded for it (None: not in the ledger)."""

    reservation: Reservation
    refund: Decimal | None


def cancel(profile: ClusterProfile, resv_id: str, now: dt.datetime,
           transport: Transport | None = None) -> Cancelled:
    """Cancel a reservation and record its refund: all of it before the start; on a free
    calendar, the unused share once it has started. ABCI closes cancelling at 21:00 the
    day before, and refunds nothing after that: abcitrain refuses instead of trying."""
    rules = rules_of(profile)
    backend = backend_for(profile, "show", "delete")
    resv = show(profile, resv_id, transport)
    if rules.calendar == "daily" and resv.start is not None:
        deadline = dt.datetime.combine(resv.start.date() - dt.timedelta(days=1),
                                       rules.booking_closes, rules.tz)
        if now >= deadline:
            raise InputError(f"reservation {resv_id} can no longer be cancelled", [Problem(
                "cancel", f"cancelling closed at {deadline:%Y-%m-%d %H:%M %Z}, the day "
                "before its start; the points are not refunded")])
    tr = transport or transport_for(profile.name)
    result = tr.run(backend.delete_argv(resv_id))
    if result.returncode != 0:
        raise refusal(backend, result)
    ledger = Ledger()
    row = ledger.get(profile.name, resv_id, "reservation")
    if row is None:
        return Cancelled(resv, None)
    charged = from_e4(row["actual_e4"] if row["actual_e4"] is not None else row["estimate_e4"])
    refund = charged
    if resv.start is not None and resv.end is not None and now > resv.start:
        total = (resv.end - resv.start).total_seconds()
        unused = max(0.0, (resv.end - now).total_seconds())
        refund = round_points(charged * Decimal(unused) / Decimal(total)) if total else \
            Decimal(0)
    ledger.refund(profile.name, resv_id, refund)
    return Cancelled(resv, refund)


def job_problems(plan: JobPlan, running_nodes: int, now: dt.datetime,
                 transport: Transport | None = None) -> list[Problem]:
    """Check a job against the reservation it names: the reservation exists, the job's
    nodes fit in it (``running_nodes``: my jobs already running in it), and its walltime
    ends before the reservation does (``abcitrain.reserve.jobfit``)."""
    spec, profile = plan.spec, plan.profile
    if not spec.reservation or not profile.data.get("reservations"):
        return []
    where = "reservation"
    try:
        resv = lookup(profile, spec.reservation, transport)
    except (TransportError, SchedulerError) as exc:
        return [Problem(where, f"could not look {spec.reservation} up, so the job is not "
                        f"checked against it: {exc}", "warning")]
    if resv is None:
        return [Problem(where, f"{spec.reservation} does not exist on {profile.name} (it may "
                        "have ended or been cancelled); `abcitrain reserve list` shows them")]
    return fit_problems(spec, resv, running_nodes, now)
