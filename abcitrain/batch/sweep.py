"""Sweeps: a parameter grid (or list) in a job spec becomes ONE array job.

A spec's ``sweep:`` names parameters and their values::

    sweep:
      grid: {LR: [1.0e-4, 3.0e-4], SEED: [1, 2, 3]}     # every combination: 6 tasks
    # or
    sweep:
      list: [{LR: 1.0e-4, SEED: 1}, {LR: 3.0e-4, SEED: 7}]

Task ``i`` (1-based, the array index) gets the i-th combination: grid order is the order of
the keys, the last one varying fastest (``itertools.product``). A parameter named like an
environment variable (``LR``) is exported to the task; one named ``train.KEY`` (a training
spec's sweep) sets that key of the task's own training config. Every task also sees all its
parameters as one JSON object in ``ABCITRAIN_SWEEP_PARAMS``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import Problem
from ..util.params import param_text

ENV_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
TRAIN_PARAM = re.compile(r"train\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
#: Far above any cluster's array cap (ABCI: 75,000); only here so a typo in a grid cannot
#: make abcitrain build billions of combinations before the cap check says no.
MAX_TASKS = 1_000_000
#: Names abcitrain's job script sets itself: a sweep may not overwrite them.
RESERVED_PREFIX = "ABCITRAIN_"


def sweep_tasks(value: Any) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The tasks of a ``sweep:`` section (one mapping of parameter to value each), and every
    problem found in it (keys prefixed ``sweep.``)."""
    if not isinstance(value, Mapping):
        return [], [Problem("sweep", "expected a mapping with grid: {NAME: [values]} or "
                            "list: [{NAME: value}, ...]")]
    forms = [k for k in ("grid", "list") if k in value]
    unknown = [k for k in value if k not in ("grid", "list")]
    problems = [Problem(f"sweep.{k}", "not a sweep key (grid or list)") for k in unknown]
    if len(forms) != 1:
        problems.append(Problem("sweep", "give exactly one of grid: or list:"))
        return [], problems
    if forms[0] == "grid":
        tasks, found = _grid(value["grid"])
    else:
        tasks, found = _listed(value["list"])
    return tasks, problems + found


def _grid(grid: Any) -> tuple[list[dict[str, Any]], list[Problem]]:
    if not isinstance(grid, Mapping) or not grid:
        return [], [Problem("sweep.grid", "expected a mapping of parameter to a list of values")]
    problems: list[Problem] = []
    axes: list[list[Any]] = []
    for name, values in grid.items():
        where = f"sweep.grid.{name}"
        problems += _name_problems(name, where)
        if not isinstance(values, list) or not values:
            problems.append(Problem(where, "expected a non-empty list of values"))
            continue
        problems += [p for i, val in enumerate(values)
                     for p in _value_problems(val, f"{where}.{i}")]
        if len(set(map(_canonical, values))) != len(values):
            problems.append(Problem(where, "lists a value twice: two tasks would be the same"))
        axes.append(values)
    count = 1
    for axis in axes:
        count *= len(axis)
    if count > MAX_TASKS:
        problems.append(Problem("sweep.grid", f"{count} combinations; at most {MAX_TASKS}"))
    if problems:
        return [], problems
    names = [str(n) for n in grid]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)], []


def _listed(tasks: Any) -> tuple[list[dict[str, Any]], list[Problem]]:
    if not isinstance(tasks, list) or not tasks:
        return [], [Problem("sweep.list", "expected a non-empty list of {NAME: value} mappings")]
    if len(tasks) > MAX_TASKS:
        return [], [Problem("sweep.list", f"{len(tasks)} tasks; at most {MAX_TASKS}")]
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, task in enumerate(tasks):
        where = f"sweep.list.{i}"
        if not isinstance(task, Mapping) or not task:
            problems.append(Problem(where, "expected a mapping of parameter to value"))
            continue
        for name, val in task.items():
            problems += _name_problems(name, f"{where}.{name}")
            problems += _value_problems(val, f"{where}.{name}")
        key = _canonical(task)
        if key in seen:
            problems.append(Problem(where, f"the same parameters as task {seen[key] + 1}"))
        seen.setdefault(key, i)
    if problems:
        return [], problems
    return [{str(k): v for k, v in task.items()} for task in tasks], []


def _name_problems(name: Any, where: str) -> list[Problem]:
    if not isinstance(name, str) or not (ENV_PARAM.fullmatch(name)
                                         or TRAIN_PARAM.fullmatch(name)):
        return [Problem(where, "a parameter is an environment variable name (letters, digits "
                        "and _, not starting with a digit) or train.KEY")]
    if name.startswith(RESERVED_PREFIX):
        return [Problem(where, f"names starting {RESERVED_PREFIX} are abcitrain's own")]
    return []


def _value_problems(value: Any, where: str) -> list[Problem]:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return [Problem(where, f"{value!r} must be text or a number (quote yes/no/true/false)")]
    if isinstance(value, str) and ("\x00" in value or len(value) > 4096):
        return [Problem(where, "contains a NUL byte or is over 4096 characters")]
    return []


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def env_of(task: Mapping[str, Any]) -> dict[str, str]:
    """What one task exports: its environment-variable parameters, as text, and all of its
    parameters as JSON in ABCITRAIN_SWEEP_PARAMS."""
    out = {k: param_text(v) for k, v in task.items() if ENV_PARAM.fullmatch(k)}
    out["ABCITRAIN_SWEEP_PARAMS"] = json.dumps(dict(task), sort_keys=True)
    return out
