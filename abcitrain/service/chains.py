"""Submitting a chain (batch.chain): every stage checked and priced before the first is
submitted, then each submitted waiting for the one before it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ..batch.chain import Chain, Stage, after, chain_id, linked, parse_chain
from ..batch.render import JobPlan, plan_job
from ..batch.store import JobRecord, JobStore
from ..errors import AbcitrainError, InputError, Problem
from ..points.budget import guard, load_budgets
from ..points.ledger import Ledger
from ..transport import Transport
from ..util.params import with_overrides
from ..util.yamlio import load_yaml_file
from . import submitting
from .common import existing_ledger
from .syntax import with_body_checked

#: What a stage's dependency shows in a dry run, where no stage has an id yet.
PLACEHOLDER = "{{{}}}"


@dataclass(frozen=True)
class ChainSubmission:
    """A submitted (or dry-run) chain: its id and each stage's plan and submission."""

    chain_id: str
    name: str
    stages: tuple[tuple[Stage, JobPlan, submitting.Submission], ...]


def load_chain(path: Path, project_dir: Path | None = None,
               overrides: Sequence[tuple[str, object]] = ()) -> Chain:
    """Load and validate a chain spec file (command-line overrides apply to every stage)."""
    data = with_overrides(load_yaml_file(path), overrides)
    return parse_chain(data, str(path), project_dir, path)


def _plan(stage: Stage, depends_on: str | None, write_training: bool) -> JobPlan:
    spec = stage.spec
    if spec.train is not None:
        from ..train.prepare import prepare
        spec, _ = prepare(spec, stage.profile, write_training, None)
    if depends_on is not None:
        spec = after(spec, depends_on, stage.after)
    return with_body_checked(plan_job(spec, stage.profile))


def plan_chain(chain: Chain, cid: str | None = None, write_training: bool = False
               ) -> list[tuple[Stage, JobPlan]]:
    """Every stage planned, each later one waiting for a placeholder id; raises InputError
    listing the problems of all stages at once."""
    stages = linked(chain, cid or chain_id(chain.name))
    planned = []
    problems: list[Problem] = []
    for i, stage in enumerate(stages):
        before = PLACEHOLDER.format(stages[i - 1].name) if i else None
        plan = _plan(stage, before, write_training)
        problems += [Problem(f"stages.{i}.{p.where}" if p.where else f"stages.{i}",
                             p.message, p.severity) for p in plan.errors]
        planned.append((stage, plan))
    if problems:
        raise InputError(f"chain {chain.name!r} cannot run", problems)
    return planned


def submit_chain(chain: Chain, store: JobStore | None, transport: Transport | None = None,
                 submit_dir: str | None = None, dry_run: bool = False) -> ChainSubmission:
    """Check and price every stage, guard the budget for the whole chain, then submit the
    stages in order, each depending on the job before it.

    A dry run plans and prices every stage and submits nothing."""
    cid = chain_id(chain.name)
    planned = plan_chain(chain, cid, write_training=not dry_run)
    _guard_whole(chain, [plan for _, plan in planned], dry_run)
    if dry_run:
        return ChainSubmission(cid, chain.name, tuple(
            (stage, plan, submitting.submit(plan, None, transport, submit_dir, dry_run=True))
            for stage, plan in planned))
    done: list[tuple[Stage, JobPlan, submitting.Submission]] = []
    previous: str | None = None
    for stage, _ in planned:
        plan = _plan(stage, previous, write_training=True)
        try:
            sub = submitting.submit(plan, store, transport, submit_dir)
        except AbcitrainError as exc:
            if not done:
                raise
            ids = ", ".join(f"{s.name} = job {sb.job_id}" for s, _, sb in done)
            raise AbcitrainError(
                f"chain {chain.name!r}: stage {stage.name!r} was not submitted ({exc}); the "
                f"stages before it ARE submitted ({ids}): cancel them with `abcitrain "
                f"cancel`, or fix the stage and submit the rest as their own chain") from exc
        done.append((stage, plan, sub))
        previous = sub.job_id
    return ChainSubmission(cid, chain.name, tuple(done))


def _guard_whole(chain: Chain, plans: Sequence[JobPlan], dry_run: bool) -> None:
    """The budget guard for the whole chain at once, per group: a chain whose later stages
    would not fit is refused before its first stage is submitted."""
    budgets = load_budgets()
    if not budgets:
        return
    per_group: dict[str | None, Decimal] = {}
    for plan in plans:
        est = submitting.estimate(plan, dt.date.today())
        if est is not None:
            per_group[plan.spec.group] = per_group.get(plan.spec.group, Decimal(0)) + est[0]
    for group, total in per_group.items():
        guard(existing_ledger() if dry_run else Ledger(), budgets, group, total,
              f"chain {chain.name!r} ({len(plans)} stages)")


def chain_of(record: JobRecord) -> dict[str, object] | None:
    """A recorded job's place in its chain (chain, stage, index, count), if it has one."""
    step = record.spec.get("chain") if isinstance(record.spec, dict) else None
    return step if isinstance(step, dict) else None
