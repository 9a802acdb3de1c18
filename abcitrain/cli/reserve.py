"""``abcitrain reserve``: plan, book, list, show and cancel advance reservations.

The verbs parse options and call ``abcitrain.reserve``; like the rest of the CLI they import
the heavy parts only when run.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import InputError, Problem
from ..util.tables import table_lines
from ..util.words import plural

if TYPE_CHECKING:
    from ..batch.store import JobRecord
    from ..domain import ClusterProfile
    from ..reserve.planner import Option, RequestPlan
    from ..reserve.rules import ReservationRequest, ReservationRules


def _moment(text: str, tz: dt.tzinfo, what: str) -> dt.datetime:
    if text == "now":
        return dt.datetime.now(tz)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"bad {what}", [Problem(what, f"{text!r} is not a date "
                                                 "(YYYY-MM-DD, YYYY-MM-DDTHH:MM, or now)")]) \
            from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _number(text: str | None, what: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(f"bad {what}", [Problem(what, f"{text!r} is not a number")]) from None
    if not value.is_finite() or value <= 0:
        raise InputError(f"bad {what}", [Problem(what, f"{text!r} must be above 0")])
    limit = _LIMITS.get(what)
    if limit is not None and value > limit:
        raise InputError(f"bad {what}", [Problem(what, f"{text!r} is over {limit}: no "
                                                 "reservation is that long")])
    return value


# Far past any site's rules (ABCI: 60 days), low enough for date arithmetic
_LIMITS = {"days": Decimal(3660), "hours": Decimal(3660 * 24)}


def _request(profile: ClusterProfile, rules: ReservationRules, resource: str, nodes: int,
             days: str | None, hours: str | None, end: str | None, start: str,
             now: dt.datetime) -> ReservationRequest:
    from ..reserve.rules import ReservationRequest
    from ..service.reservations import NOW_LEAD

    problems = []
    if resource not in profile.resource_types:
        problems.append(Problem("type", f"{resource!r} is not a resource type of "
                                f"{profile.name}; choose one of: "
                                f"{', '.join(profile.resource_types)}"))
    if start == "now" and rules.calendar == "daily":
        problems.append(Problem("start", f"{profile.name} books whole days: give the first "
                                "day (YYYY-MM-DD)"))
    given = [x for x in (days, hours, end) if x is not None]
    if len(given) != 1:
        problems.append(Problem("days", "give exactly one of --days, --hours or --end"))
    if problems:
        raise InputError("cannot read the reservation request", problems)
    first = now + NOW_LEAD if start == "now" else _moment(start, rules.tz, "start")
    if end is not None:
        last = _moment(end, rules.tz, "end")
        length = (Decimal(str((last.date() - first.date()).days)) if rules.calendar == "daily"
                  else Decimal(str((last - first).total_seconds())) / 86400)
    elif hours is not None:
        length = (_number(hours, "hours") or Decimal(0)) / 24
    else:
        length = _number(days, "days") or Decimal(0)
    return ReservationRequest(resource, nodes, length, first.replace(microsecond=0))


def _request_options(f: Any) -> Any:
    for option in reversed([
        click.option("--cluster", required=True, help="The cluster profile."),
        click.option("--type", "resource", required=True, help="The resource type to reserve."),
        click.option("--start", default=None,
                     help="First day (YYYY-MM-DD) or, on a free calendar, a time "
                          "(YYYY-MM-DDTHH:MM) or 'now'."),
        click.option("--as-of", "as_of", default=None,
                     help="Plan as if booking at this time (default: now); picks the rules "
                          "in force and the deadlines."),
    ]):
        f = option(f)
    return f


def _load(cluster: str) -> tuple[ClusterProfile, ReservationRules]:
    from ..profiles import load_profile
    from ..reserve.rules import rules_of

    profile = load_profile(cluster)
    return profile, rules_of(profile)


def _now(as_of: str | None, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.now(tz) if as_of is None else _moment(as_of, tz, "as-of")


@click.group()
def reserve() -> None:
    """Advance reservations: plan against the rules, book, list, show, cancel."""


@reserve.command("plan")
@_request_options
@click.option("--nodes", type=click.IntRange(min=1), help="Nodes to reserve.")
@click.option("--days", help="Days to reserve.")
@click.option("--hours", help="Hours to reserve (free calendars).")
@click.option("--end", help="The day the reservation ends (or, on a free calendar, the time).")
@click.option("--need-node-hours", help="Instead of a request: the node-hours a run needs.")
@click.option("--need-gpu-hours", help="Instead of a request: the GPU-hours a run needs.")
@click.option("--within", type=click.IntRange(min=1),
              help="With --need-*: only plans that end within this many days of the start.")
@click.option("-n", "--count", default=5, show_default=True, help="Plans to show for --need-*.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan_cmd(cluster: str, resource: str, start: str | None, as_of: str | None,
             nodes: int | None, days: str | None, hours: str | None, end: str | None,
             need_node_hours: str | None, need_gpu_hours: str | None, within: int | None,
             count: int, as_json: bool) -> None:
    """Check a reservation against the cluster's rules, price it, and say what would fit.

    Either a request (--nodes with --days, --hours or --end), or the work a run needs
    (--need-node-hours or --need-gpu-hours) to get the cheapest plans that fit."""
    from ..reserve.planner import plan_request, plans_for_need
    from ..reserve.rules import earliest_start
    from ..service.reservations import NOW_LEAD

    profile, rules = _load(cluster)
    now = _now(as_of, rules.tz)
    from ..batch.checks import retirement_problem
    from .output import echo_problems

    retired = retirement_problem(profile, now.date(), "warning")
    if retired is not None:
        echo_problems([retired])
    # by default: the first day that can still be booked, or now on a free calendar
    first = start or ("now" if rules.calendar == "free"
                      else earliest_start(rules, now).strftime("%Y-%m-%d"))
    if need_node_hours or need_gpu_hours:
        if resource not in profile.resource_types:
            raise InputError("unknown type", [Problem("type", f"{resource!r} is not a type of "
                                                      f"{cluster}")])
        gpus = profile.resource_types[resource].gpus
        if need_gpu_hours and not gpus:
            raise InputError("no GPUs", [Problem("type", f"{resource} has no GPUs; use "
                                                 "--need-node-hours")])
        need = (_number(need_node_hours, "need-node-hours") if need_node_hours
                else (_number(need_gpu_hours, "need-gpu-hours") or Decimal(0)) / gpus)
        assert need is not None
        begin = now + NOW_LEAD if first == "now" else _moment(first, rules.tz, "start")
        options = plans_for_need(rules, profile, resource, need, begin, now, count,
                                 within_days=within)
        _show_need(profile, resource, need, options, as_json)
        if not options:
            sys.exit(2)
        return
    if nodes is None:
        raise InputError("what to plan?", [Problem("nodes", "give --nodes with --days, "
                                                   "--hours or --end, or --need-node-hours")])
    req = _request(profile, rules, resource, nodes, days, hours, end, first, now)
    result = plan_request(rules, profile, req, now)
    _show_plan(profile, result, as_json)
    if result.problems:
        sys.exit(2)


def _booking_json(option: Option) -> dict[str, Any]:
    return {"label": option.label, "points": _s(option.points),
            "node_hours": _s(option.node_hours), "usable_node_hours": _s(
                option.usable_node_hours),
            "notes": list(option.notes),
            "reservations": [{"nodes": b.nodes, "days": _s(b.days),
                              "start": b.window.start.isoformat(),
                              "end": b.window.end.isoformat(),
                              "booking_deadline": b.window.booking_deadline.isoformat(),
                              "points": _s(b.points)} for b in option.bookings]}


def _s(value: Decimal | None) -> str | None:
    """A figure for people: at most 2 decimals, no trailing zeros."""
    if value is None:
        return None
    return f"{value.quantize(Decimal('0.01')).normalize():f}"


def _t(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def _show_plan(profile: ClusterProfile, result: RequestPlan, as_json: bool) -> None:
    req, lim, win = result.request, result.limits, result.window
    if as_json:
        click.echo(json.dumps({
            "cluster": profile.name, "type": req.resource, "nodes": req.nodes,
            "days": _s(win.days), "start": win.start.isoformat(), "end": win.end.isoformat(),
            "booking_deadline": win.booking_deadline.isoformat(),
            "usable_hours": _s(win.usable_hours), "points": _s(result.points),
            "ok": not result.problems,
            "problems": [{"where": p.where, "message": p.message} for p in result.problems],
            "limits": {"since": lim.since.isoformat(), "max_nodes": lim.max_nodes,
                       "max_node_hours": _s(lim.max_node_hours),
                       "min_days": _s(lim.min_days), "max_days": _s(lim.max_days)},
            "alternatives": [_booking_json(o) for o in result.alternatives]}, indent=1))
        return
    caps = [f"{lim.min_days}-{lim.max_days} days" if lim.max_days is not None else "",
            f"<= {lim.max_nodes} nodes" if lim.max_nodes else "",
            f"<= {_s(lim.max_node_hours)} node-hours" if lim.max_node_hours else ""]
    click.echo(f"{profile.name} {req.resource}: {plural(req.nodes, 'node')} x "
               f"{plural(_s(win.days), 'day')}")
    click.echo(f"  rules in force since {lim.since}: " + ", ".join(c for c in caps if c))
    for note in lim.notes:
        click.echo(f"    ({note})")
    click.echo(f"  runs {_t(win.start)} to {_t(win.end)}: {_s(win.usable_hours)} usable hours "
               f"per node, {_s(win.usable_hours * req.nodes)} node-hours "
               f"(charged {_s(win.charged_hours * req.nodes)})")
    click.echo(f"  booking and cancelling close {_t(win.booking_deadline)}")
    click.echo(f"  cost: {_s(result.points)} points, charged at booking"
               if result.points is not None else "  cost: no prices known for this cluster")
    if not result.problems:
        click.echo("  ok: the request fits the rules")
        return
    click.echo(f"  refused: {plural(len(result.problems), 'rule')} broken")
    for p in result.problems:
        click.echo(f"    error: {p}")
    if not result.alternatives:
        click.echo("  nothing close fits; try `--need-node-hours` for plans that do")
    else:
        click.echo("  what would fit instead:")
    for option in result.alternatives:
        _echo_option(option)


def _echo_option(option: Option) -> None:
    points = f"{_s(option.points)} points" if option.points is not None else "no price"
    click.echo(f"    {option.label}: {points}, {_s(option.usable_node_hours)} usable "
               "node-hours")
    for b in option.bookings:
        length = (f"{_s(b.days)} days" if b.window.booking_deadline != b.window.start
                  else f"{_s(b.days * 24)} hours")      # a free calendar books hours
        click.echo(f"      {plural(b.nodes, 'node')} x {length}, {_t(b.window.start)} to "
                   f"{_t(b.window.end)} (book by {_t(b.window.booking_deadline)})"
                   + (f": {_s(b.points)} points" if len(option.bookings) > 1
                      and b.points is not None else ""))
    for note in option.notes:
        click.echo(f"      note: {note}")


def _show_need(profile: ClusterProfile, resource: str, need: Decimal, options: list[Option],
               as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"cluster": profile.name, "type": resource,
                               "need_node_hours": _s(need),
                               "plans": [_booking_json(o) for o in options]}, indent=1))
        return
    click.echo(f"{profile.name} {resource}: plans giving {_s(need)} usable node-hours, "
               "cheapest first (the fastest is always listed)")
    if not options:
        click.echo("  none fits the rules")
    for option in options:
        _echo_option(option)


@reserve.command("create")
@_request_options
@click.option("--nodes", type=click.IntRange(min=1), required=True, help="Nodes to reserve.")
@click.option("--days", help="Days to reserve.")
@click.option("--hours", help="Hours to reserve (free calendars).")
@click.option("--end", help="The day the reservation ends (or, on a free calendar, the time).")
@click.option("--name", required=True, help="The reservation's name.")
@click.option("--group", help="The group charged for it.")
@click.option("--dry-run", is_flag=True, help="Check and print the command; book nothing.")
def create_cmd(cluster: str, resource: str, start: str | None, as_of: str | None, nodes: int,
               days: str | None, hours: str | None, end: str | None, name: str,
               group: str | None, dry_run: bool) -> None:
    """Book a reservation (qrsub / scontrol create reservation); charge it in the ledger."""
    from ..service import reservations as rsv

    profile, rules = _load(cluster)
    if as_of is not None and not dry_run:
        raise InputError("--as-of plans only", [Problem("as-of", "a real booking happens now; "
                                                        "use --as-of with --dry-run or plan")])
    now = _now(as_of, rules.tz)
    if start is None:
        raise InputError("when?", [Problem("start", "give --start")])
    req = _request(profile, rules, resource, nodes, days, hours, end, start, now)
    booked = rsv.create(profile, req, name, group, now, dry_run=dry_run)
    win, points = booked.plan.window, booked.plan.points
    cost = f"{_s(points)} points" if points is not None else "no price known"
    if booked.resv_id is None:
        click.echo(f"dry run: nothing was booked or charged.\n  command: {shlex.join(booked.argv)}"
                   f"\n  {req.nodes} x {req.resource}, {_t(win.start)} to {_t(win.end)}; "
                   f"{cost} at booking")
        return
    click.echo(f"booked {profile.name} reservation {booked.resv_id} ({name}): {req.nodes} x "
               f"{req.resource}, {_t(win.start)} to {_t(win.end)}")
    click.echo(f"  command: {shlex.join(booked.argv)}\n  charged: {cost}")
    click.echo(f"  jobs use it with `reservation: {booked.resv_id}` in their spec")


def _resv_dict(resv: Any, charge: dict[str, Any] | None) -> dict[str, Any]:
    from ..points.tariffs import from_e4

    return {"id": resv.resv_id, "name": resv.name, "owner": resv.owner, "state": resv.state,
            "start": resv.start.isoformat() if resv.start else None,
            "end": resv.end.isoformat() if resv.end else None, "nodes": resv.nodes,
            "hosts": list(resv.hosts), "group": resv.group,
            "charged": str(from_e4(charge["actual_e4"] or charge["estimate_e4"]))
            if charge else None,
            "refund": str(from_e4(charge["refund_e4"])) if charge else None}


def _charges(cluster: str) -> dict[str, dict[str, Any]]:
    from ..service.common import existing_ledger

    ledger = existing_ledger()
    if ledger is None:
        return {}
    return {r["ref"]: r for r in ledger.rows() if r["kind"] == "reservation"
            and r["cluster"] == cluster}


def _jobs_in(cluster: str, ids: set[str]) -> dict[str, list[JobRecord]]:
    from ..batch.store import JobStore
    from ..service.submitting import jobs_in_reservations

    return jobs_in_reservations(JobStore(), cluster, ids)


@reserve.command("list")
@click.option("--cluster", required=True, help="The cluster profile.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the reservations and my jobs in them into this PNG.")
def list_cmd(cluster: str, as_json: bool, plot: Path | None) -> None:
    """List the reservations the scheduler shows, with what abcitrain charged for them."""
    from ..service import reservations as rsv

    profile, rules = _load(cluster)
    found = rsv.list_reservations(profile)
    charges = _charges(cluster)
    if plot is not None:
        from .output import writable_image

        writable_image(plot, "plot")
        _plot(found, cluster, plot, rules.tz)
    if as_json:
        click.echo(json.dumps([_resv_dict(r, charges.get(r.resv_id)) for r in found],
                              indent=1))
        return
    if not found:
        click.echo(f"no reservations on {cluster}")
        return
    rows = [("ID", "NAME", "STATE", "START", "END", "NODES", "CHARGED")]
    for r in found:
        d = _resv_dict(r, charges.get(r.resv_id))
        rows.append((r.resv_id, r.name, r.state, _t(r.start) if r.start else "-",
                     _t(r.end) if r.end else "-", str(r.nodes or "-"), d["charged"] or "-"))
    for line in table_lines(rows):
        click.echo(line)


def _plot(found: list[Any], cluster: str, path: Path, tz: dt.tzinfo) -> None:
    from ..reserve.gantt import plot_timeline

    plot_timeline(found, _jobs_in(cluster, {r.resv_id for r in found}), path,
                  dt.datetime.now(tz), f"{cluster}: reservations and my jobs in them")
    click.echo(f"plot written to {path}", err=True)


@reserve.command("show")
@click.argument("resv_id")
@click.option("--cluster", required=True, help="The cluster profile.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the reservation and my jobs in it into this PNG.")
def show_cmd(resv_id: str, cluster: str, as_json: bool, plot: Path | None) -> None:
    """Show one reservation: its window, nodes, charge, and my jobs in it."""
    from ..service import reservations as rsv

    profile, rules = _load(cluster)
    resv = rsv.show(profile, resv_id)
    from ..service.common import existing_ledger

    ledger = existing_ledger()
    charge = ledger.get(cluster, resv.resv_id, "reservation") if ledger else None
    jobs = _jobs_in(cluster, {resv.resv_id}).get(resv.resv_id, [])
    if plot is not None:
        _plot([resv], cluster, plot, rules.tz)
    data = _resv_dict(resv, charge)
    data["jobs"] = [{"job_id": j.job_id, "name": j.name, "state": j.state,
                     "nodes": j.spec.get("nodes", 1)} for j in jobs]
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    now = dt.datetime.now(rules.tz)
    left = resv.time_left_s(now)
    click.echo(f"{cluster} reservation {resv.resv_id} {resv.name} ({resv.state})")
    click.echo(f"  {_t(resv.start) if resv.start else '?'} to "
               f"{_t(resv.end) if resv.end else '?'}, {plural(resv.nodes or '?', 'node')}"
               + (f" ({', '.join(resv.hosts)})" if resv.hosts else ""))
    if left is not None:
        from ..util.durations import format_hms

        click.echo(f"  time left for jobs: {format_hms(left)}")
    click.echo(f"  charged {data['charged']} points" + (f", refunded {data['refund']}"
                                                         if data["refund"] not in (None, "0.0000")
                                                         else "")
               if charge else "  not booked through abcitrain: no charge recorded")
    for j in data["jobs"]:
        click.echo(f"  job {j['job_id']} {j['name']}: {plural(j['nodes'], 'node')}, {j['state']}")


@reserve.command("cancel")
@click.argument("resv_id")
@click.option("--cluster", required=True, help="The cluster profile.")
def cancel_cmd(resv_id: str, cluster: str) -> None:
    """Cancel a reservation (qrdel / scontrol delete) and record the refund."""
    from ..service import reservations as rsv

    profile, rules = _load(cluster)
    done = rsv.cancel(profile, resv_id, dt.datetime.now(rules.tz))
    click.echo(f"cancelled {cluster} reservation {resv_id}"
               + (f"; refunded {done.refund} points" if done.refund is not None
                  else "; it was not booked through abcitrain, so no refund is recorded"))
