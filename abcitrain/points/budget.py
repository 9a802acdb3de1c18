"""Budgets and the guard that refuses a submission the group cannot pay for.

Budgets live in the project's ``abcitrain.yaml``::

    budgets:
      gaa50000: 1000                          # points for the group
      gaa50001: {points: 1000, users: {alice: 400, bob: 300}}

What a group has left is its budget minus what the ledger has taken (actual charges once
known, the maximum estimate while a job is unfinished, as ABCI pre-deducts). When the real
balance has been synced from ``show_point``, the smaller of the two counts.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import voluptuous as vol

from ..errors import AbcitrainError
from ..util import validation as v
from ..util.yamlio import load_yaml_file
from .ledger import Ledger
from .tariffs import E4, from_e4

CONFIG_NAME = "abcitrain.yaml"
_POINTS = v.number_at_least(0)
CONFIG_SCHEMA = vol.Schema({
    vol.Optional("budgets", default={}): {str: vol.Any(
        _POINTS, {vol.Required("points"): _POINTS,
                  vol.Optional("users", default={}): {str: _POINTS}})},
}, extra=vol.ALLOW_EXTRA)


class BudgetError(AbcitrainError):
    """A submission would overrun a budget: nothing is submitted or charged."""

    exit_code = 2


@dataclass(frozen=True)
class Budget:
    """One group's budget, with optional per-user shares."""

    group: str
    points: Decimal
    users: dict[str, Decimal] = field(default_factory=dict)


def load_budgets(project_dir: Path | None = None) -> dict[str, Budget]:
    """The budgets in the project's abcitrain.yaml (none if there is no such file)."""
    path = (project_dir or Path.cwd()) / CONFIG_NAME
    if not path.is_file():
        return {}
    data: dict[str, Any] = v.validate(CONFIG_SCHEMA, load_yaml_file(path) or {},
                                      f"{path} has errors")
    out = {}
    for grp, value in data["budgets"].items():
        if isinstance(value, dict):
            out[grp] = Budget(grp, Decimal(str(value["points"])),
                              {u: Decimal(str(p)) for u, p in value["users"].items()})
        else:
            out[grp] = Budget(grp, Decimal(str(value)))
    return out


@dataclass(frozen=True)
class Standing:
    """Where a group stands: its budget, what is taken, what is left."""

    group: str
    budget: Decimal
    committed: Decimal
    remaining: Decimal
    synced_remaining: Decimal | None = None
    synced_at: str | None = None


def standing(ledger: Ledger | None, budget: Budget) -> Standing:
    """Budget minus the ledger's charges, capped by the last show_point balance if any."""
    committed = from_e4(ledger.committed_e4(budget.group)) if ledger else Decimal(0)
    remaining = budget.points - committed
    bal = ledger.balance(budget.group) if ledger else None
    if ledger is None or bal is None:
        return Standing(budget.group, budget.points, committed, remaining)
    real = Decimal(bal["point_e4"] - bal["used_e4"]) / E4
    real -= from_e4(ledger.pending_since_e4(budget.group, bal["synced_at"]))
    return Standing(budget.group, budget.points, committed, min(remaining, real), real,
                    bal["synced_at"])


def guard(ledger: Ledger | None, budgets: dict[str, Budget], group: str | None,
          max_charge: Decimal, what: str,
          hint: str = "Shorten the walltime, use fewer nodes, or raise the budget in "
          "abcitrain.yaml.") -> None:
    """Refuse (BudgetError, exit 2) when ``max_charge`` would take a group or user past zero."""
    budget = budgets.get(group or "")
    if budget is None:
        return
    st = standing(ledger, budget)
    if max_charge > st.remaining:
        synced = (f"; show_point balance synced {st.synced_at}: {st.synced_remaining} left"
                  if st.synced_at else "")
        raise BudgetError(
            f"refused before submission: {what} would cost up to {max_charge} points, but "
            f"group {budget.group} has {st.remaining} of its {budget.points} left "
            f"({st.committed} already committed{synced}). {hint}")
    user = getpass.getuser()
    share = budget.users.get(user)
    if share is not None:
        used = from_e4(ledger.committed_e4(budget.group, user)) if ledger else Decimal(0)
        if max_charge > share - used:
            raise BudgetError(
                f"refused before submission: {what} would cost up to {max_charge} points, but "
                f"{user}'s share of group {budget.group} has {share - used} of {share} left.")
