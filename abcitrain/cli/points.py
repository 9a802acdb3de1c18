"""``abcitrain points``: spent and left by group, user, day and job; ``sync`` and ``import``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from ..util.words import plural

#: Charges listed per group in the text report (--json lists all).
SHOWN_JOBS = 20


@click.group(invoke_without_command=True)
@click.option("--group", "only", help="Only this group.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw cumulative points against the budget into this PNG.")
@click.option("--no-refresh", is_flag=True, help="Do not ask schedulers about unfinished jobs.")
@click.pass_context
def points(ctx: click.Context, only: str | None, as_json: bool, plot: Path | None,
           no_refresh: bool) -> None:
    """Points spent and left by group, user, day and job; burn rate and forecast."""
    if ctx.invoked_subcommand is not None:
        return
    from ..service.common import existing_ledger
    from ..service.points_report import all_budgets, points_report, refresh_unfinished_charges

    if not no_refresh:
        refresh_unfinished_charges(lambda text: click.echo(f"warning: {text}", err=True))
    ledger = existing_ledger()
    budgets = all_budgets(ledger)
    if only and only not in budgets and not (ledger is not None and ledger.rows(only)):
        _no_such_group(only, budgets, ledger)
    found = points_report([only] if only else None, budgets=budgets, ledger=ledger)
    rows, data = found.rows, found.data
    if plot is not None:
        from ..points.plot import plot_budget
        from .output import writable_image

        writable_image(plot, "plot")

        plot_budget(rows, data, plot)
        click.echo(f"plot written to {plot}", err=True)
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    if not data["groups"]:
        click.echo("no charges recorded yet")
    for g in data["groups"]:
        budget = g["budget"] or "(no budget set)"
        click.echo(f"group {g['group']}: budget {budget}, taken {g['taken']} (settled "
                   f"{g['settled']}, still estimated {g['pending_estimates']}), remaining "
                   f"{g['remaining'] if g['remaining'] is not None else '-'}")
        spent = g["remaining"] is not None and Decimal(g["remaining"]) <= 0
        click.echo(f"  burn rate {g['burn_per_day']} points/day over {g['burn_window']}; "
                   + (f"the budget is spent (since {g['forecast_exhausted']})"
                      + (f", over by {g['over_budget_by']}" if g["over_budget_by"] else "")
                      if spent else
                      f"at this rate the budget runs out on {g['forecast_exhausted']}"
                      if g["forecast_exhausted"] else
                      "no forecast (no budget set)" if g["budget"] is None else
                      "no forecast (nothing spent yet)"))
        shares = g["user_shares"]
        for user, taken in g["by_user"].items():
            share = shares.get(user)
            click.echo(f"  user {user}: {taken}" + (
                f" of a {share['share']} share, {share['left']} left" if share else ""))
        for user, share in shares.items():
            if user not in g["by_user"]:
                click.echo(f"  user {user}: 0 of a {share['share']} share, "
                           f"{share['left']} left")
        for day, taken in list(g["by_day"].items())[-14:]:
            click.echo(f"  day {day}: {taken}")
        if len(g["jobs"]) > SHOWN_JOBS:
            click.echo(f"  ... {plural(len(g['jobs']) - SHOWN_JOBS, 'earlier charge')} not "
                       f"shown; the last {SHOWN_JOBS} follow (--json lists all)")
        for j in g["jobs"][-SHOWN_JOBS:]:
            actual = j["actual"] if j["actual"] is not None else "-"
            click.echo(f"  {j['kind']} {j['cluster']}/{j['ref']} {j['name']} {j['state']}: "
                       f"estimate {j['estimate']}, actual {actual}"
                       + (f", refund {j['refund']}" if j["refund"] != "0.0000" else ""))


def _no_such_group(group: str, budgets: Mapping[str, object], ledger: object) -> None:
    """Refuse a group that has neither a budget nor a charge, naming the ones there are."""
    import difflib

    from ..errors import InputError, Problem

    known = set(budgets)
    rows = getattr(ledger, "rows", None)
    if rows is not None:
        known |= {r["grp"] for r in rows() if r["grp"]}
    close = difflib.get_close_matches(group, sorted(known), n=1)
    raise InputError("no such group", [Problem("--group", (
        f"{group!r} has no budget and no charge"
        + (f"; did you mean {close[0]!r}?" if close else "")
        + (f" (groups known: {', '.join(sorted(known))})" if known else
           " (no group has a budget or a charge yet)")))])


@points.command("quote")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--on", "on_day", metavar="YYYY-MM-DD",
              help="Price at the tariff in force on this day (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def points_quote(spec: Path, on_day: str | None, as_json: bool) -> None:
    """What SPEC costs at its full walltime, at the tariff of any day (nothing is run)."""
    import datetime as dt

    from ..errors import InputError, Problem
    from ..service import submitting
    from ..util.durations import format_hms

    try:
        day = dt.date.fromisoformat(on_day) if on_day else dt.date.today()
    except ValueError:
        raise InputError("bad --on", [Problem("--on", f"{str(on_day)[:40]!r} is not a day "
                                              "(YYYY-MM-DD)")]) from None
    from .chains import is_chain_file

    if is_chain_file(spec):
        _quote_chain(spec, day, as_json)
        return
    plan = submitting.load_plan(spec)
    submitting.require_submittable(plan)
    est = submitting.estimate(plan, day)
    if est is None:
        raise InputError("nothing to price", [Problem(
            "cluster", f"{plan.profile.name} has no prices" if not plan.profile.data.get(
                "tariffs") else "a job in a reservation costs nothing of its own")])
    charge, q = est
    over = submitting.overrun_charge(plan, day)
    spec_ = plan.spec
    if as_json:
        click.echo(json.dumps({"on": day.isoformat(), "cluster": plan.profile.name,
                               "charge_at_walltime": str(charge),
                               "charge_with_overrun": None if over is None else str(over),
                               "tariff": q.describe()}, indent=1))
        return
    tasks = f" x {spec_.array.count} array tasks" if spec_.array else ""
    click.echo(f"{spec_.name} on {plan.profile.name}, priced on {day}: {charge} points at the "
               f"full walltime ({spec_.nodes} x {spec_.resource} x "
               f"{format_hms(spec_.walltime_s)}{tasks}; {q.describe()})"
               + (f"; up to {over} points with the "
                  f"{format_hms(int(plan.profile.data['walltime_overrun']))} walltime overrun"
                  if over is not None else ""))


def _quote_chain(path: Path, day: Any, as_json: bool) -> None:
    """A chain's price: every stage's at its full walltime, and the sum (each stage runs
    once, one after another)."""
    from decimal import Decimal

    from ..service import submitting
    from ..service.chains import load_chain, plan_chain

    chain = load_chain(path)
    rows = []
    for stage, plan in plan_chain(chain):
        est = submitting.estimate(plan, day)
        over = submitting.overrun_charge(plan, day)
        rows.append((stage.name, plan, None if est is None else est[0], over))
    total = sum((r[2] for r in rows if r[2] is not None), Decimal(0))
    overs = [r[3] if r[3] is not None else r[2] for r in rows]
    total_over = (sum((o for o in overs if o is not None), Decimal(0))
                  if any(r[3] is not None for r in rows) else None)
    if as_json:
        click.echo(json.dumps({
            "on": day.isoformat(), "cluster": rows[0][1].profile.name,
            "charge_at_walltime": str(total),
            "charge_with_overrun": None if total_over is None else str(total_over),
            "tariff": f"chain {chain.name}: {plural(len(rows), 'stage')}",
            "stages": [{"name": name, "cluster": plan.profile.name,
                        "charge_at_walltime": None if c is None else str(c)}
                       for name, plan, c, _ in rows]}, indent=1))
        return
    click.echo(f"chain {chain.name}, priced on {day}: {total} points at the full walltime of "
               f"every stage" + (f"; up to {total_over} with the walltime overrun"
                                 if total_over is not None else ""))
    for name, plan, charge, _ in rows:
        click.echo(f"  stage {name} on {plan.profile.name}: "
                   + (f"{charge} points" if charge is not None else "no price")
                   + f" ({plan.spec.nodes} x {plan.spec.resource})")


@points.command("sync")
@click.option("--cluster", default="abci3", show_default=True,
              help="The cluster whose show_point this is.")
@click.option("--file", "from_file", type=click.Path(exists=True, dir_okay=False,
                                                      path_type=Path),
              help="Read saved show_point output instead of running show_point.")
def points_sync(cluster: str, from_file: Path | None) -> None:
    """Record the groups' real balances from ABCI's show_point."""
    from ..service.points_report import sync_show_point

    text = from_file.read_text() if from_file is not None else None
    for g in sync_show_point(cluster, text):
        click.echo(f"{cluster} group {g.group}: {g.point} points, {g.used} used, "
                   f"{g.remaining} left")


@points.command("import")
@click.argument("accounting", type=click.File("r"))
@click.option("--format", "fmt", type=click.Choice(["sacct", "qacct"]),
              help="The records' format (default: the one the cluster's scheduler writes).")
@click.option("--cluster", required=True, help="The cluster profile that prices the records.")
def points_import(accounting: Any, fmt: str | None, cluster: str) -> None:
    """Import accounting records (sacct --parsable2 or qacct -j output) into the ledger.

    For sacct, ask for --format=JobID,User,Account,Partition,NNodes,Submit,ElapsedRaw,State,
    AllocNodes,JobName: AllocNodes tells a job that ran under a second (charged the minimum)
    from one that never ran (charged nothing); JobName names each job in the report."""
    from ..backends import get_backend
    from ..errors import InputError, Problem
    from ..points.accounting import import_accounting
    from ..points.ledger import Ledger
    from ..profiles import load_profile

    profile = load_profile(cluster)
    fmt = fmt or get_backend(profile.scheduler).accounting_format
    if fmt is None:
        raise InputError("which accounting format?", [Problem(
            "--format", f"the {profile.scheduler} scheduler of {cluster} names none: pass "
            "--format sacct or --format qacct")])
    try:
        result = import_accounting(accounting, fmt, profile, Ledger)
    except ValueError as exc:
        raise InputError("cannot import this accounting file", [Problem(fmt, str(exc))]) \
            from None
    click.echo(f"read {result.read} records, imported {result.imported} new")
    for why, n in sorted(result.skipped.items()):
        first = result.first_at.get(why)
        click.echo(f"  skipped {n}: {why}" + (f" (first at {first})" if first else ""))
