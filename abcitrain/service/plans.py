"""Loading and checking a job spec into a plan: what `render` needs and no more.

Kept apart from ``service.submitting`` so the commonest command loads no ledger, job store or
SQLite: login nodes read Python from shared file systems, where every import costs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ..batch.checks import errors_in
from ..batch.render import JobPlan, plan_job
from ..batch.spec import load_spec, parse_spec
from ..domain import ClusterProfile, JobSpec
from ..errors import InputError, Problem
from ..util.params import with_overrides
from .syntax import with_body_checked


def load_plan(spec_path: Path, project_dir: Path | None = None, write_training: bool = False,
              chain_index: int | None = None,
              overrides: Sequence[tuple[str, object]] = ()) -> JobPlan:
    """Load, validate, check and render a job spec file, with command-line ``overrides``
    applied first. A training spec is planned first (``write_training`` writes its DeepSpeed
    config); ``chain_index`` numbers a job that continues an earlier one."""
    spec, profile = load_spec(spec_path, project_dir, overrides)
    return _planned(spec, profile, project_dir, write_training, chain_index)


def plan_mapping(data: Mapping[str, object], project_dir: Path | None = None,
                 write_training: bool = False,
                 overrides: Sequence[tuple[str, object]] = ()) -> JobPlan:
    """``load_plan`` for a spec built in Python (a mapping of the YAML's keys)."""
    spec, profile = parse_spec(with_overrides(data, overrides), "job spec", project_dir)
    return _planned(spec, profile, project_dir, write_training, None)


def _planned(spec: JobSpec, profile: ClusterProfile, project_dir: Path | None,
             write_training: bool, chain_index: int | None) -> JobPlan:
    if spec.train is not None:
        from ..train.prepare import prepare
        spec, _ = prepare(spec, profile, write_training, project_dir)
    if chain_index is not None:
        spec = replace(spec, env={**spec.env, "ABCITRAIN_CHAIN_INDEX": str(chain_index)})
    return with_body_checked(plan_job(spec, profile))


def require_submittable(plan: JobPlan, more: Sequence[Problem] = ()) -> None:
    """Raise InputError (exit 2) listing every error that stops this job: the plan's, and
    those among ``more`` (found by asking the scheduler, such as about a reservation)."""
    errors = [*plan.errors, *errors_in(list(more))]
    if errors:
        raise InputError(f"job {plan.spec.name!r} cannot run on {plan.profile.name!r}",
                         errors)
