"""The chain side of ``render``, ``check`` and ``submit``: a spec file with ``stages:``."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .output import echo_problems


def is_chain_file(path: Path) -> bool:
    """True when the spec file describes a chain (a mapping with ``stages:``). Asked by
    every `render`, `check` and `submit`: batch.chain (its parser) is imported only for
    a chain."""
    from ..util.yamlio import load_yaml_file

    data = load_yaml_file(path)
    return isinstance(data, dict) and "stages" in data


def render_chain(path: Path, overrides: Sequence[tuple[str, object]]) -> None:
    """Print every stage's script in order, each with the command that would submit it."""
    from ..service.chains import load_chain, plan_chain

    for i, (stage, plan) in enumerate(plan_chain(load_chain(path, overrides=overrides)), 1):
        echo_problems(plan.problems)
        click.echo(f"# ===== stage {i}: {stage.name} (after the stage before: {stage.after})"
                   if i > 1 else f"# ===== stage 1: {stage.name}")
        click.echo(plan.script, nl=False)
        # each stage waits for the one before: `abcitrain submit CHAIN` passes the ids
        click.echo(f"# saved as {stage.name}.sh: "
                   f"{shlex.join(plan.submit_argv(f'{stage.name}.sh'))}")


def check_chain(path: Path, overrides: Sequence[tuple[str, object]], as_json: bool) -> None:
    """`check` for a chain: every stage checked, the whole chain priced against the budget."""
    from ..batch.store import JobStore
    from ..service.chains import load_chain, submit_chain

    sub = submit_chain(load_chain(path, overrides=overrides), JobStore.existing(),
                       dry_run=True)
    if as_json:
        # check's own shape (docs/json.md), with the stages
        charges = [sb.max_charge for _, _, sb in sub.stages]
        overs = [sb.overrun_charge if sb.overrun_charge is not None else sb.max_charge
                 for _, _, sb in sub.stages]
        priced = all(c is not None for c in charges)
        click.echo(json.dumps({
            "ok": True, "cluster": sub.stages[0][1].profile.name if sub.stages else None,
            "title": None, "errors": [],
            "warnings": [{"where": w.where, "message": w.message} for _, p, sb in sub.stages
                         for w in (*p.problems, *sb.warnings) if w.severity == "warning"],
            "charge_at_walltime": str(sum(c for c in charges if c is not None))
            if priced else None,
            "charge_with_overrun": str(sum(o for o in overs if o is not None))
            if priced and any(sb.overrun_charge is not None for _, _, sb in sub.stages)
            else None,
            "chain": sub.name, "stages": [
                {"name": s.name, "cluster": p.profile.name, "after": s.after,
                 "warnings": [{"where": w.where, "message": w.message}
                              for w in (*p.problems, *sb.warnings) if w.severity == "warning"]}
                for s, p, sb in sub.stages]}, indent=1))
        return
    for stage, plan, sb in sub.stages:
        echo_problems([p for p in (*plan.problems, *sb.warnings) if p.severity == "warning"])
        click.echo(f"ok: stage {stage.name} fits {plan.profile.name} ({plan.spec.nodes} x "
                   f"{plan.spec.resource}, {plan.spec.service})")


def submit_chain(path: Path, overrides: Sequence[tuple[str, object]], dry_run: bool,
                 wait: bool, as_json: bool, parsable: bool) -> None:
    """`submit` for a chain: all stages checked and priced first, then submitted in order."""
    from ..batch.store import JobStore
    from ..service import chains

    chain = chains.load_chain(path, overrides=overrides)
    if dry_run:
        sub = chains.submit_chain(chain, None, dry_run=True)
        for i, (stage, plan, sb) in enumerate(sub.stages, 1):
            echo_problems([*plan.problems, *sb.warnings])
            click.echo(f"# ===== stage {i} of {len(sub.stages)}: {stage.name}")
            click.echo(plan.script, nl=False)
            click.echo(f"# command: {shlex.join(sb.argv)}\n# {_charge(sb)}")
        click.echo("# dry run: nothing was written, submitted, charged or recorded.")
        return
    store = JobStore()
    sub = chains.submit_chain(chain, store)
    for _, _, sb in sub.stages:
        echo_problems([*sb.warnings])
    if parsable:
        click.echo(" ".join(str(sb.job_id) for _, _, sb in sub.stages))
    elif as_json:
        click.echo(json.dumps({"chain": sub.chain_id, "stages": [
            {"name": s.name, "cluster": p.profile.name, "job_id": sb.job_id, "after": s.after,
             "charge_at_walltime": None if sb.max_charge is None else str(sb.max_charge)}
            for s, p, sb in sub.stages]}, indent=1))
    else:
        click.echo(f"submitted chain {sub.chain_id} ({len(sub.stages)} stages)")
        previous = None
        for stage, plan, sb in sub.stages:
            waits = f", after job {previous} ({stage.after})" if previous else ""
            click.echo(f"  {stage.name}: {plan.profile.name} job {sb.job_id}{waits}; "
                       f"{_charge(sb)}")
            previous = sb.job_id
    if wait:
        _wait(store, [(sb.job_id, p.profile.name) for _, p, sb in sub.stages],
              quiet=as_json or parsable)


def _charge(sub: Any) -> str:
    return ("no points" if sub.max_charge is None
            else f"up to {sub.max_charge} points at the full walltime")


def _wait(store: Any, jobs: Sequence[tuple[str | None, str]], quiet: bool) -> None:
    """Follow every stage until all have ended; exit 0 only if every stage completed."""
    from ..service import following
    from ..service.poll import follow

    records = [following.find_record(store, str(j), cluster) for j, cluster in jobs]
    final = follow(records, store)
    for rec in final:
        click.echo(f"  {rec.name}: job {rec.job_id} ended {rec.state}"
                   + (f" (exit {rec.exit_code})" if rec.exit_code is not None else ""),
                   err=quiet)
    sys.exit(0 if all(r.state == "COMPLETED" for r in final) else 1)
