"""The ``abcitrain`` command line. Each verb parses its options and calls ``service``.

Kept light on purpose: login nodes read Python from shared file systems, so heavy modules
(torch, deepspeed, paramiko) are never imported here, and the service layer is imported only
inside the verbs that need it. Domain errors become exit statuses in one place
(``_Group.invoke``): bad input 2, scheduler refusals and transport failures 1.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import AbcitrainError, Problem
from .tables import table_lines


class _UserError(click.ClickException):
    """An AbcitrainError shown to the user: its message, no traceback."""

    def __init__(self, exc: AbcitrainError) -> None:
        super().__init__(str(exc))

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _BadInput(_UserError):
    """Bad input: exit status 2, as for a usage error."""

    exit_code = 2


# Verbs defined in their own modules, imported only when run or listed in --help: each
# module's click decorators cost milliseconds that `render` on a login node need not pay.
_LAZY = {"reserve": "cli_reserve", "memory": "cli_memory", "plan": "cli_train",
         "launch": "cli_train", "init": "cli_train"}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _LAZY:
            import importlib
            module = importlib.import_module(f".{_LAZY[name]}", __package__)
            command = getattr(module, name)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AbcitrainError as exc:
            raise (_BadInput if exc.exit_code == 2 else _UserError)(exc) from None


def _echo_problems(problems: list[Problem] | tuple[Problem, ...]) -> None:
    for p in problems:
        click.echo(f"{p.severity}: {p}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="abcitrain")
def cli() -> None:
    """Describe a training job once; run it on PBS Pro, Grid Engine, Slurm or this machine."""


@cli.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the script to this file instead of standard output.")
def render(spec: Path, output: Path | None) -> None:
    """Print the job script for SPEC's cluster and the exact submit command."""
    from . import service

    plan = service.load_plan(spec)
    service.require_submittable(plan)
    _echo_problems(plan.problems)
    if output is not None:
        output.write_text(plan.script, encoding="utf-8")
        output.chmod(0o755)
        script_name = str(output)
    else:
        click.echo(plan.script, nl=False)
        script_name = "JOB_SCRIPT.sh"
    click.echo(f"# submit with: {shlex.join(plan.submit_argv(script_name))}", err=True)


@cli.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(spec: Path) -> None:
    """Check SPEC against its cluster's limits; list every problem at once."""
    from . import service
    from .checks import WARNING
    from .jobstore import JobStore

    plan = service.load_plan(spec)
    found = service.reservation_problems(plan, JobStore())
    # the errors come once, in the refusal below; warnings are shown either way
    _echo_problems([p for p in (*plan.problems, *found) if p.severity == WARNING])
    service.require_submittable(plan, found)
    click.echo(f"ok: {plan.spec.name} fits {plan.profile.name} ({plan.spec.nodes} x "
               f"{plan.spec.resource}, {plan.spec.service})")


@cli.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the script and command; run nothing.")
@click.option("--wait", is_flag=True,
              help="Stay until the job ends, showing its output; exit 1 unless it completed.")
@click.option("--chain-index", type=click.IntRange(min=2), hidden=True,
              help="Set by `abcitrain launch` when a training job continues itself.")
def submit(spec: Path, dry_run: bool, wait: bool, chain_index: int | None) -> None:
    """Check, render and submit SPEC; record the job for `abcitrain status`."""
    from . import service
    from .jobstore import JobStore

    plan = service.load_plan(spec, write_training=not dry_run, chain_index=chain_index)
    service.require_submittable(plan)
    _echo_problems(plan.problems)
    if dry_run:
        sub = service.submit(plan, None, dry_run=True)
        _echo_problems(sub.warnings)
        click.echo(plan.script, nl=False)
        click.echo(f"# dry run: nothing was written, submitted, charged or recorded.\n"
                   f"# script would be written to: {sub.script_path}\n"
                   f"# command (in {sub.submit_dir}): {shlex.join(sub.argv)}\n"
                   f"# {_charge_line(plan, sub)}")
        return
    store = JobStore()
    sub = service.submit(plan, store)
    _echo_problems(sub.warnings)
    click.echo(f"submitted {plan.profile.name} job {sub.job_id} ({plan.spec.name})")
    click.echo(f"  script: {sub.script_path}\n  command: {shlex.join(sub.argv)}\n"
               f"  {_charge_line(plan, sub)}")
    if wait:
        assert sub.job_id is not None
        record = _follow(store, sub.job_id, plan.profile.name, show=plan.spec.array is None)
        click.echo(f"job {record.job_id} ended {record.state}"
                   + (f" (exit {record.exit_code})" if record.exit_code is not None else ""))
        if record.state != "COMPLETED":
            sys.exit(1)


def _charge_line(plan: Any, sub: Any) -> str:
    if plan.spec.reservation:
        return (f"points: none for the job; reservation {plan.spec.reservation} was charged "
                "when it was booked")
    if sub.max_charge is None:
        return f"points: no prices are known for cluster {plan.profile.name!r}"
    spec = plan.spec
    tasks = f" x {spec.array.count} array tasks" if spec.array else ""
    from .durations import format_hms

    return (f"maximum charge: {sub.max_charge} points ({spec.nodes} x {spec.resource} x "
            f"{format_hms(spec.walltime_s)}{tasks}; {sub.quote.describe()})")


def _fmt_elapsed(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


@cli.command()
@click.argument("job_ids", nargs=-1)
@click.option("--cluster", help="Only jobs on this cluster.")
@click.option("-n", "--limit", default=20, show_default=True, help="How many recent jobs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(job_ids: tuple[str, ...], cluster: str | None, limit: int, as_json: bool) -> None:
    """Show my jobs (or JOB_IDS): one scheduler query per cluster for all of them."""
    from . import service
    from .jobstore import JobStore

    store = JobStore()
    if job_ids:
        records = [service.find_record(store, j, cluster) for j in job_ids]
    else:
        records = store.recent(limit=limit, cluster=cluster)
    records = service.refresh(records, store)
    if as_json:
        click.echo(json.dumps([{
            "cluster": r.cluster, "job_id": r.job_id, "name": r.name, "state": r.state,
            "exit_code": r.exit_code, "elapsed_s": r.elapsed_s, "detail": r.detail,
            "submitted_at": r.submitted_at, "array_tasks": r.array_tasks} for r in records],
            indent=1))
        return
    if not records:
        click.echo("no jobs recorded yet: `abcitrain submit JOB.yaml` records each one")
        return
    rows = [("JOB ID", "CLUSTER", "NAME", "STATE", "EXIT", "ELAPSED", "SUBMITTED", "DETAIL")]
    for r in records:
        rows.append((r.job_id, r.cluster, r.name, r.state,
                     "-" if r.exit_code is None else str(r.exit_code),
                     _fmt_elapsed(r.elapsed_s),
                     time.strftime("%m-%d %H:%M", time.localtime(r.submitted_at)), r.detail))
    for line in table_lines(rows):
        click.echo(line)


@cli.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--cluster", help="The cluster, when an id exists on several.")
def cancel(job_ids: tuple[str, ...], cluster: str | None) -> None:
    """Cancel jobs abcitrain submitted."""
    from . import service
    from .jobstore import JobStore

    for rec in service.cancel(job_ids, JobStore(), cluster):
        click.echo(f"cancel requested: {rec.cluster} job {rec.job_id} ({rec.name})")


@cli.command()
@click.argument("job_id")
@click.option("--task", type=int, help="The array task whose output to show.")
@click.option("--cluster", help="The cluster, when an id exists on several.")
@click.option("--path", "path_only", is_flag=True, help="Print only the output file's path.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
def logs(job_id: str, task: int | None, cluster: str | None, path_only: bool,
         follow: bool) -> None:
    """Print a job's output file."""
    from . import service
    from .jobstore import JobStore

    store = JobStore()
    record = service.find_record(store, job_id, cluster)
    path = service.output_path(record, task)
    if path_only:
        click.echo(path)
    elif follow:
        _follow(store, job_id, record.cluster, task=task)
    else:
        click.echo(service.logs(job_id, store, task, record.cluster)[1], nl=False)


def _follow(store: Any, job_id: str, cluster: str, task: int | None = None,
            show: bool = True) -> Any:
    """Print a job's output as it grows until the job ends; return its final record."""
    from . import service
    from .errors import TransportError
    from .model import JobState

    shown = 0
    delay = 0.5
    while True:
        record = service.refresh([service.find_record(store, job_id, cluster)], store)[0]
        done = JobState(record.state).terminal
        if show:
            try:
                text = service.logs(job_id, store, task, cluster)[1]
            except TransportError:
                text = ""
            click.echo(text[shown:], nl=False)
            shown = len(text)
        if done:
            return record
        time.sleep(delay)
        delay = min(delay * 1.5, 10.0)     # back off: polls cost the scheduler


@cli.group(invoke_without_command=True)
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
    import datetime as dt

    from . import service
    from .budget import load_budgets, standing
    from .errors import AbcitrainError
    from .jobstore import JobStore
    from .ledger import Ledger
    from .points import report

    ledger = Ledger()
    if not no_refresh:
        store = JobStore()
        found = (store.get(r["cluster"], r["ref"]) for r in ledger.rows()
                 if r["kind"] == "job" and r["actual_e4"] is None)
        records = [rec for rec in found if rec is not None]
        try:
            service.refresh(records, store)
        except AbcitrainError as exc:
            click.echo(f"warning: could not refresh unfinished jobs: {exc}", err=True)
    rows = ledger.rows(only)
    budgets = load_budgets()
    if only:
        budgets = {k: b for k, b in budgets.items() if k == only}
    standings = {grp: standing(ledger, b) for grp, b in budgets.items()}
    data = report(rows, standings, dt.date.today())
    if plot is not None:
        from .plot import plot_budget

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
        click.echo(f"  burn rate {g['burn_per_day']} points/day over the last days; "
                   + (f"at this rate the budget runs out on {g['forecast_exhausted']}"
                      if g["forecast_exhausted"] else "no forecast (no budget or no spend)"))
        for user, taken in g["by_user"].items():
            click.echo(f"  user {user}: {taken}")
        for day, taken in list(g["by_day"].items())[-14:]:
            click.echo(f"  day {day}: {taken}")
        for j in g["jobs"][-20:]:
            actual = j["actual"] if j["actual"] is not None else "-"
            click.echo(f"  {j['kind']} {j['cluster']}/{j['ref']} {j['name']} {j['state']}: "
                       f"estimate {j['estimate']}, actual {actual}"
                       + (f", refund {j['refund']}" if j["refund"] != "0.0000" else ""))


@points.command("sync")
@click.option("--cluster", default="abci3", show_default=True,
              help="The cluster whose show_point this is.")
@click.option("--file", "from_file", type=click.Path(exists=True, dir_okay=False,
                                                      path_type=Path),
              help="Read saved show_point output instead of running show_point.")
def points_sync(cluster: str, from_file: Path | None) -> None:
    """Record the groups' real balances from ABCI's show_point."""
    from . import service
    from .errors import SchedulerError
    from .ledger import Ledger
    from .showpoint import parse_show_point
    from .tariffs import to_e4

    if from_file is not None:
        text = from_file.read_text()
    else:
        result = service.transport_for(cluster).run(["show_point"])
        if result.returncode != 0:
            raise SchedulerError(result.argv, result.returncode, result.stdout, result.stderr,
                                 "show_point runs on ABCI's login nodes only")
        text = result.stdout
    try:
        groups = parse_show_point(text)
    except ValueError as exc:
        from .errors import InputError, Problem

        raise InputError("cannot read show_point output", [Problem("show_point", str(exc))]) \
            from None
    ledger = Ledger()
    for g in groups:
        ledger.set_balance(cluster, g.group, to_e4(g.point), to_e4(g.used))
        click.echo(f"{cluster} group {g.group}: {g.point} points, {g.used} used, "
                   f"{g.remaining} left")


@points.command("import")
@click.argument("accounting", type=click.File("r"))
@click.option("--format", "fmt", type=click.Choice(["sacct", "qacct"]), required=True)
@click.option("--cluster", required=True, help="The cluster profile that prices the records.")
def points_import(accounting: Any, fmt: str, cluster: str) -> None:
    """Import accounting records (sacct --parsable2 or qacct -j output) into the ledger."""
    from .acct_import import import_accounting
    from .errors import InputError, Problem
    from .ledger import Ledger
    from .profiles import load_profile

    profile = load_profile(cluster)
    try:
        result = import_accounting(accounting, fmt, profile, Ledger())
    except ValueError as exc:
        raise InputError("cannot import this accounting file", [Problem(fmt, str(exc))]) \
            from None
    click.echo(f"read {result.read} records, imported {result.imported} new")
    for why, n in sorted(result.skipped.items()):
        click.echo(f"  skipped {n}: {why}")


@cli.group(invoke_without_command=True)
@click.pass_context
def clusters(ctx: click.Context) -> None:
    """List the cluster profiles (built in, yours, and the project's)."""
    if ctx.invoked_subcommand is not None:
        return
    from .profiles import available_names, load_profile

    rows = [("NAME", "SCHEDULER", "RESOURCE TYPES", "DESCRIPTION")]
    for name in available_names():
        p = load_profile(name)
        rows.append((name, p.scheduler, ",".join(p.resource_types), p.description))
    for line in table_lines(rows):
        click.echo(line)


@clusters.command("show")
@click.argument("name")
def clusters_show(name: str) -> None:
    """Print one cluster profile as merged from every layer, with its sources."""
    import yaml

    from .profiles import load_profile

    p = load_profile(name)
    click.echo(f"# {name}: merged from {p.source}")
    data = dict(p.data)
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)




def main() -> None:
    """Console entry point."""
    cli(prog_name="abcitrain")


if __name__ == "__main__":
    main()
