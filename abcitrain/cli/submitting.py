"""``abcitrain render | check | submit``: a job from its spec to the scheduler.

Each verb parses its options and calls ``abcitrain.service.submitting`` (``render``: the
lighter ``service.plans``), imported inside the verb so that ``--help`` stays cheap.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..util.words import plural
from .output import echo_problems, error_json


def overridable(command: Any, hold: bool = True) -> Any:
    """The spec fields a submission may change on the command line, validated exactly as if
    the file said so (``--set KEY=VALUE`` takes YAML values and dotted keys). ``hold=False``
    (check): ``--hold`` is accepted but not offered, since it changes nothing there."""
    options = [
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Set any spec key for this run (train.steps=100, env.SEED=3); "
                     "repeatable."),
        click.option("--depends-on", multiple=True, metavar="JOB_ID",
                     help="Start after this job (replaces the spec's depends_on); "
                     "repeatable."),
        click.option("--cluster", "cluster_override", metavar="NAME",
                     help="Another cluster profile."),
        click.option("--walltime", metavar="DURATION", help="Another walltime."),
        click.option("--nodes", metavar="N", help="Another node count."),
        click.option("--hold", is_flag=True, default=None, hidden=not hold,
                     help="Submit held; `abcitrain release ID` lets it run."),
    ]
    for option in options:
        command = option(command)
    return command


def overridable_without_hold(command: Any) -> Any:
    """``overridable`` for check, where --hold changes nothing (accepted, not offered)."""
    return overridable(command, hold=False)


def overrides_of(sets: Sequence[str], depends_on: Sequence[str], cluster: str | None,
                 walltime: str | None, nodes: str | None,
                 hold: bool | None = None) -> list[tuple[str, object]]:
    """The (key, value) pairs the command line sets, each value read as YAML would read it
    in the file (so 1:30 stays ninety minutes and 4 is a number)."""
    from ..errors import InputError, Problem
    from ..util.yamlio import load_yaml_text

    found: list[tuple[str, object]] = []
    problems = []
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep or not re_key(key):
            problems.append(Problem("--set", f"{item[:80]!r}: write KEY=VALUE (KEY may be "
                                    "dotted: train.steps=100)"))
            continue
        found.append((key, load_yaml_text(text, f"--set {key}") if text else ""))
    if problems:
        raise InputError("bad --set", problems)
    for key, given in (("cluster", cluster), ("walltime", walltime), ("nodes", nodes)):
        if given is not None:
            found.append((key, load_yaml_text(given, f"--{key}")))
    if depends_on:
        found.append(("depends_on", list(depends_on)))
    if hold:
        found.append(("hold", True))
    return found


def re_key(key: str) -> bool:
    """A spec key, possibly dotted."""
    import re

    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*", key) is not None


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the script to this file instead of standard output.")
@overridable
def render(spec: Path, output: Path | None, sets: tuple[str, ...],
           depends_on: tuple[str, ...], cluster_override: str | None, walltime: str | None,
           nodes: str | None, hold: bool | None) -> None:
    """Print the job script for SPEC's cluster and the exact submit command (every stage's,
    in order, for a chain)."""
    from ..service import plans  # not service.submitting: no ledger, store, SQLite
    from .chains import is_chain_file, render_chain

    overrides = overrides_of(sets, depends_on, cluster_override, walltime, nodes, hold)
    if is_chain_file(spec) and output is None:
        render_chain(spec, overrides)
        return
    plan = plans.load_plan(spec, overrides=overrides)
    plans.require_submittable(plan)
    echo_problems(plan.problems)
    if output is not None:
        try:
            output.write_text(plan.script, encoding="utf-8")
            output.chmod(0o755)
        except OSError as exc:     # a missing folder, a full device, no permission
            from ..errors import InputError, Problem

            raise InputError(f"cannot write {output}", [Problem(
                "output", exc.strerror or str(exc))]) from None
        click.echo(f"# submit with: {shlex.join(plan.submit_argv(str(output)))}", err=True)
    else:
        click.echo(plan.script, nl=False)
        # the script went to stdout, not to a file: name the file it would be saved as
        saved = f"{plan.spec.name}.sh"
        click.echo(f"# saved as {saved} (abcitrain render {shlex.quote(str(spec))} -o "
                   f"{saved}), submit with: {shlex.join(plan.submit_argv(saved))}; or "
                   f"`abcitrain submit {shlex.quote(str(spec))}` does both and records the "
                   "job", err=True)


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as JSON, price included (docs/json.md; exit 2 when not "
              "ok).")
@overridable_without_hold
def check(spec: Path, as_json: bool, sets: tuple[str, ...], depends_on: tuple[str, ...],
          cluster_override: str | None, walltime: str | None, nodes: str | None,
          hold: bool | None) -> None:
    """Check SPEC against its cluster's limits; list every problem at once."""
    from ..batch.checks import WARNING
    from ..batch.store import JobStore
    from ..errors import AbcitrainError
    from ..service import submitting

    overrides = overrides_of(sets, depends_on, cluster_override, walltime, nodes, hold)
    from .chains import check_chain, is_chain_file

    if is_chain_file(spec):
        check_chain(spec, overrides, as_json)
        return
    plan = None
    try:
        plan = submitting.load_plan(spec, overrides=overrides)
        if not as_json:
            # the errors come once, in the refusal below; warnings are shown either way
            echo_problems([p for p in plan.problems if p.severity == WARNING])
        submitting.require_submittable(plan)
        # `check` is `submit` without the submission: the same reservation look-up, prices
        # and budget guard, reading the job store and ledger only if they exist
        sub = submitting.submit(plan, JobStore.existing(), dry_run=True)
    except AbcitrainError as exc:
        if not as_json or exc.exit_code != 2:
            raise
        # one shape for ok and refused alike (docs/json.md: check)
        click.echo(json.dumps(error_json(exc, plan.profile.name if plan is not None else None,
                                         charge_at_walltime=None, charge_with_overrun=None),
                              indent=1))
        sys.exit(2)
    if as_json:
        click.echo(json.dumps({
            "ok": True, "cluster": plan.profile.name, "title": None, "errors": [],
            "warnings": [{"where": p.where, "message": p.message}
                         for p in (*plan.problems, *sub.warnings) if p.severity == WARNING],
            "charge_at_walltime": None if sub.max_charge is None else str(sub.max_charge),
            "charge_with_overrun": None if sub.overrun_charge is None
            else str(sub.overrun_charge)}, indent=1))
        return
    echo_problems([p for p in sub.warnings if p.severity == WARNING])
    click.echo(f"ok: {plan.spec.name} fits {plan.profile.name} ({plan.spec.nodes} x "
               f"{plan.spec.resource}, {plan.spec.service})")
    click.echo(f"  {_charge_line(plan, sub)}")


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the script and command; run nothing.")
@click.option("--wait", is_flag=True,
              help="Stay until the job ends, showing its output; exit with the job's own "
              "exit status (1 if it ended otherwise without one).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the submission as JSON (id, script, command, charge).")
@click.option("--parsable", is_flag=True, help="Print only the job id (as sbatch --parsable).")
@click.option("--chain-index", type=click.IntRange(min=2), hidden=True,
              help="Set by `abcitrain launch` when a training job continues itself.")
@overridable
def submit(spec: Path, dry_run: bool, wait: bool, as_json: bool, parsable: bool,
           chain_index: int | None, sets: tuple[str, ...], depends_on: tuple[str, ...],
           cluster_override: str | None, walltime: str | None, nodes: str | None,
           hold: bool | None) -> None:
    """Check, render and submit SPEC; record the job for `abcitrain status`.

    A spec with stages: is a chain: every stage is checked and priced first, then each is
    submitted waiting for the one before it."""
    from ..batch.store import JobStore
    from ..errors import AbcitrainError
    from ..service import submitting
    from .chains import is_chain_file, submit_chain

    if is_chain_file(spec):
        submit_chain(spec, overrides_of(sets, depends_on, cluster_override, walltime, nodes,
                                        hold), dry_run, wait, as_json, parsable)
        return
    plan = None
    try:
        plan = submitting.load_plan(spec, write_training=not dry_run, chain_index=chain_index,
                                    overrides=overrides_of(sets, depends_on, cluster_override,
                                                           walltime, nodes, hold))
        submitting.require_submittable(plan)
        if not as_json:
            echo_problems(plan.problems)
        if dry_run:
            sub = submitting.submit(plan, None, dry_run=True)
            _dry_run(plan, sub, as_json)
            return
        store = JobStore()
        sub = submitting.submit(plan, store, progress=_progress)
    except AbcitrainError as exc:
        if not as_json:
            raise
        # a refusal (bad input, the budget, the scheduler) in the same JSON shape
        click.echo(json.dumps(error_json(exc, plan.profile.name if plan else None,
                                         **dict.fromkeys(SUBMISSION_KEYS)), indent=1))
        sys.exit(exc.exit_code)
    echo_problems(sub.warnings)
    if sub.uploaded is not None and not parsable:
        up = sub.uploaded
        click.echo(f"uploaded {plural(len(up.sent), 'changed file')}, "
                   f"{up.sent_bytes / 1e6:.1f} MB, "
                   f"to the login node's copy of {sub.submit_dir} ({up.unchanged} unchanged, "
                   f"{up.excluded} excluded by pattern)", err=as_json)
    if parsable:
        click.echo(sub.job_id)
    elif as_json:
        click.echo(json.dumps(_submission_json(plan, sub), indent=1))
    else:
        click.echo(f"submitted {plan.profile.name} job {sub.job_id} ({plan.spec.name})")
        click.echo(f"  script: {sub.script_path}\n  command: {shlex.join(sub.argv)}\n"
                   f"  {_charge_line(plan, sub)}")
    if sub.unrecorded:
        for line in sub.unrecorded:
            click.echo(f"error: job {sub.job_id} IS submitted, but was {line}", err=True)
        click.echo(f"error: do not submit it again: the scheduler has job {sub.job_id}",
                   err=True)
        sys.exit(1)
    if wait:
        from .following import follow_output, wait_status

        assert sub.job_id is not None
        try:
            record = follow_output(store, sub.job_id, plan.profile.name,
                                   show=plan.spec.array is None and not (as_json or parsable))
        except KeyboardInterrupt:
            click.echo(f"\nstopped waiting; job {sub.job_id} keeps running: follow it with "
                       f"`abcitrain logs {sub.job_id} -f`, cancel it with "
                       f"`abcitrain cancel {sub.job_id}`", err=True)
            sys.exit(130)
        click.echo(f"job {record.job_id} ended {record.state}"
                   + (f" (exit {record.exit_code})" if record.exit_code is not None else ""),
                   err=as_json or parsable)
        sys.exit(wait_status(record.state, record.exit_code))


#: The tenth of each upload last reported where stderr is not a terminal (a log, a pipe).
_REPORTED: dict[str, int] = {}


def _progress(path: str, done: int, total: int) -> None:
    """Upload progress of a large file: redrawn on one line of a terminal; elsewhere (a log
    file, a pipe) one line per tenth of the file at most, never a carriage return."""
    text = f"  uploading {path}: {done / 1e6:.0f} of {total / 1e6:.0f} MB"
    if sys.stderr.isatty():
        click.echo(text, err=True, nl=False)
        click.echo("\n" if done >= total else "\r", err=True, nl=False)
        return
    tenth = 10 * done // total if total else 10
    if tenth > _REPORTED.get(path, -1):
        _REPORTED[path] = tenth
        click.echo(text, err=True)


#: The keys of submit --json besides ok/title/errors/warnings (docs/json.md: submit).
SUBMISSION_KEYS = ("job_id", "name", "script", "command", "submit_dir", "host",
                   "charge_at_walltime", "charge_with_overrun", "unrecorded", "uploaded",
                   "dry_run", "script_text")


def _login_host(plan: Any) -> str | None:
    """The login node the submission goes to over SSH; None when it runs here."""
    from ..service.identity import scheduler_is_here

    return None if scheduler_is_here(plan.profile) else str(plan.profile.login.get("ssh"))


def _submission_json(plan: Any, sub: Any, dry_run: bool = False) -> dict[str, object]:
    found = [{"where": p.where, "message": p.message} for p in (*plan.problems, *sub.warnings)
             if p.severity == "warning"]
    data: dict[str, object] = {
        "ok": True, "cluster": plan.profile.name, "title": None, "errors": [],
        "warnings": found, "job_id": sub.job_id, "name": plan.spec.name,
        "script": sub.script_path, "command": list(sub.argv), "submit_dir": sub.submit_dir,
        "host": _login_host(plan),
        "charge_at_walltime": None if sub.max_charge is None else str(sub.max_charge),
        "charge_with_overrun": None if sub.overrun_charge is None else str(sub.overrun_charge),
        "unrecorded": list(sub.unrecorded),
        "uploaded": None if sub.uploaded is None else list(sub.uploaded.sent),
        "dry_run": dry_run, "script_text": plan.script if dry_run else None}
    assert set(data) == {"ok", "cluster", "title", "errors", "warnings", *SUBMISSION_KEYS}
    return data


def _dry_run(plan: Any, sub: Any, as_json: bool) -> None:
    """What a submission would do: the script, where it would go, the command, the price."""
    if as_json:
        click.echo(json.dumps(_submission_json(plan, sub, dry_run=True), indent=1))
        return
    echo_problems(sub.warnings)
    click.echo(plan.script, nl=False)
    host = _login_host(plan)
    where = "" if host is None else (
        f"# over SSH to {host} (the login node): the project folder {sub.submit_dir} would "
        f"be uploaded first (only files changed since the last upload) to its copy under "
        f"{plan.profile.login.get('workdir') or 'abcitrain'}/ in the home folder there, and "
        "the command run there\n")
    click.echo(f"# dry run: nothing was written, submitted, charged or recorded.\n{where}"
               f"# script would be written to: {sub.script_path}\n"
               f"# command (in {sub.submit_dir}): {shlex.join(sub.argv)}\n"
               f"# {_charge_line(plan, sub)}")


def _charge_line(plan: Any, sub: Any) -> str:
    if plan.spec.reservation:
        return (f"points: none for the job; reservation {plan.spec.reservation} was charged "
                "when it was booked")
    if sub.max_charge is None:
        return f"points: no prices are known for cluster {plan.profile.name!r}"
    spec = plan.spec
    tasks = f" x {spec.array.count} array tasks" if spec.array else ""
    from ..util.durations import format_hms

    basis = (f"({spec.nodes} x {spec.resource} x {format_hms(spec.walltime_s)}{tasks}; "
             f"{sub.quote.describe()})")
    if sub.overrun_charge is None:
        return f"maximum charge: {sub.max_charge} points {basis}"
    # the scheduler may run a job past its walltime: the walltime's charge is no maximum
    overrun = format_hms(int(plan.profile.data["walltime_overrun"]))
    return (f"charge at the full walltime: {sub.max_charge} points {basis}; the scheduler "
            f"may let a job run up to {overrun} past its walltime (walltime_overrun), up to "
            f"{sub.overrun_charge} points; the ledger keeps what it really ran")


