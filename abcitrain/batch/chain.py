"""Chains: one spec file with ``stages:`` becomes jobs that run one after another.

::

    name: pipeline                 # the chain's name
    cluster: slurm                 # every other top-level key is shared by all stages
    resource: cpu
    walltime: 10m
    stages:
      - {name: preprocess, command: [python, prep.py]}
      - {name: train, walltime: 2h, command: [python, train.py]}
      - {name: evaluate, after: afterany, command: [python, eval.py]}

Each stage is the top-level keys with the stage's own keys over them. A stage waits for the
one before it: ``after: afterok`` (the default: it runs only if the stage before succeeded)
or ``afterany``. The scheduler's own dependencies carry the order (``--dependency``,
``-hold_jid``, ``-W depend=``); where a scheduler runs an afterok job after a failure
anyway (Grid Engine), the job's script refuses to run its stage (``ChainStep.requires``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..domain import DEPENDENCY_KINDS, ChainStep, ClusterProfile, JobSpec
from ..errors import InputError, Problem
from .spec import NAME_RE, parse_spec

#: Where a chain's stages leave their "succeeded" markers, under the submit folder.
MARKERS_DIR = Path(".abcitrain") / "chains"


@dataclass(frozen=True)
class Stage:
    """One stage of a chain: its validated spec and how it waits for the stage before."""

    name: str
    after: str
    spec: JobSpec
    profile: ClusterProfile


@dataclass(frozen=True)
class Chain:
    """A chain's stages, in order, each checked as a job spec of its own."""

    name: str
    stages: tuple[Stage, ...]


def parse_chain(data: Mapping[str, Any], source: str = "chain spec",
                project_dir: Path | None = None, source_path: Path | None = None) -> Chain:
    """Validate every stage at once (problems prefixed ``stages.N.``) and build the chain."""
    problems: list[Problem] = []
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(NAME_RE, name):
        problems.append(Problem("name", "the chain's name: letters, digits, _ . + - only, "
                                "starting with a letter or digit"))
    raw = data.get("stages")
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{source} has errors", [*problems, Problem(
            "stages", "expected a list of stages, each a mapping with at least a name")])
    shared = {k: v for k, v in data.items() if k not in ("name", "stages")}
    stages: list[Stage] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"stages.{i}"
        if not isinstance(item, Mapping):
            problems.append(Problem(where, "expected a mapping of job spec keys"))
            continue
        own = dict(item)
        after = own.pop("after", "afterok")
        if after not in DEPENDENCY_KINDS:
            problems.append(Problem(f"{where}.after", f"{after!r}: one of "
                                    f"{', '.join(DEPENDENCY_KINDS)}"))
            after = "afterok"
        if i == 0 and "after" in item:
            problems.append(Problem(f"{where}.after", "the first stage waits for no stage"))
        if own.get("name") in seen:
            problems.append(Problem(f"{where}.name", f"{own['name']!r} names two stages"))
        seen.add(str(own.get("name")))
        try:
            spec, profile = parse_spec({**shared, **own}, f"{source} stage {i}", project_dir,
                                       source_path)
        except InputError as exc:
            problems += [Problem(f"{where}.{p.where}" if p.where else where, p.message,
                                 p.severity) for p in exc.problems]
            continue
        stages.append(Stage(spec.name, after, spec, profile))
    if problems:
        raise InputError(f"{source} has errors", problems)
    return Chain(str(name), tuple(stages))


def chain_id(name: str) -> str:
    """A new chain's id: its name, when it was submitted and by which process."""
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def linked(chain: Chain, cid: str) -> list[Stage]:
    """The stages with their place in chain ``cid`` set (markers relative to the submit
    folder, which every job script enters first)."""
    out = []
    previous_done: str | None = None
    for i, stage in enumerate(chain.stages, start=1):
        done = str(MARKERS_DIR / cid / f"{i}-{stage.name}.ok")
        requires = previous_done if (i > 1 and stage.after == "afterok") else None
        step = ChainStep(cid, stage.name, i, len(chain.stages), requires, done)
        out.append(replace(stage, spec=replace(stage.spec, chain=step)))
        previous_done = done
    return out


def after(spec: JobSpec, job_id: str, kind: str) -> JobSpec:
    """``spec`` waiting for job ``job_id`` (``kind``: afterok or afterany) before its own
    dependencies."""
    return replace(spec, depends_on=(job_id, *spec.depends_on), dependency=kind)
