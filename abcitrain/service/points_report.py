"""The points report's data, gathered once for ``abcitrain points`` and the organizer's board.

Both show the same numbers: the ledger's rows, the project's budgets (plus the groups synced
from show_point that have none), each group's standing and ``points.report.report``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..batch.store import JobStore
from ..errors import AbcitrainError
from ..points.budget import Budget, load_budgets, standing
from ..points.ledger import Ledger
from ..points.report import report
from .common import existing_ledger
from .following import refresh


@dataclass(frozen=True)
class PointsReport:
    """The ledger rows the report was made from, the budgets, and the report itself."""

    rows: list[dict[str, Any]]
    budgets: dict[str, Budget]
    data: dict[str, Any]
    #: Whether a ledger exists yet (reading never creates one).
    has_ledger: bool


def refresh_unfinished_charges(warn: Callable[[str], None]) -> None:
    """Ask the schedulers once about every job whose charge is still an estimate, so the
    report settles what has ended (one query per cluster; a failure is a warning)."""
    ledger, store = existing_ledger(), JobStore.existing()
    if ledger is None or store is None:
        return
    found = (store.get(r["cluster"], r["ref"]) for r in ledger.rows()
             if r["kind"] == "job" and r["actual_e4"] is None)
    records = [rec for rec in found if rec is not None]
    try:
        refresh(records, store)
    except AbcitrainError as exc:
        warn(f"could not refresh unfinished jobs: {exc}")


def all_budgets(ledger: Ledger | None) -> dict[str, Budget]:
    """The project's budgets, plus a budget for each group synced from show_point without
    one in abcitrain.yaml (its show_point allotment; the balance caps what is left)."""
    budgets = load_budgets()
    if ledger is not None:
        for grp, allotment in ledger.synced_points().items():
            budgets.setdefault(grp, Budget(grp, allotment))
    return budgets


def points_report(groups: list[str] | None = None, today: dt.date | None = None,
                  budgets: Mapping[str, Budget] | None = None, ledger: Ledger | None = None,
                  rows: list[dict[str, Any]] | None = None) -> PointsReport:
    """The report for ``groups`` (all groups when None), from the ledger as it is now.
    A caller that has the ledger open, or has read all its rows, passes them in."""
    ledger = ledger if ledger is not None else existing_ledger()
    if rows is None:
        rows = ledger.rows() if ledger is not None else []
    found = dict(budgets) if budgets is not None else all_budgets(ledger)
    if groups is not None:
        wanted = set(groups)
        rows = [r for r in rows if r["grp"] in wanted]
        found = {k: b for k, b in found.items() if k in wanted}
    standings = {grp: standing(ledger, b) for grp, b in found.items()}
    data = report(rows, standings, today or dt.date.today(),
                  {grp: b.users for grp, b in found.items() if b.users})
    return PointsReport(rows, found, data, ledger is not None)


def sync_show_point(cluster: str, text: str | None = None) -> list[Any]:
    """Record each group's real balance from ABCI's ``show_point`` (run on ``cluster``'s login
    node, or ``text`` saved from it); return the groups read (``points.showpoint``)."""
    from ..errors import InputError, Problem, SchedulerError
    from ..points.showpoint import parse_show_point
    from ..points.tariffs import to_e4
    from .common import transport_for

    if text is None:
        result = transport_for(cluster).run(["show_point"])
        if result.returncode != 0:
            raise SchedulerError(result.argv, result.returncode, result.stdout, result.stderr,
                                 "show_point runs on ABCI's login nodes only")
        text = result.stdout
    try:
        groups = parse_show_point(text)
    except ValueError as exc:
        raise InputError("cannot read show_point output", [Problem("show_point", str(exc))]) \
            from None
    ledger = Ledger()
    for g in groups:
        ledger.set_balance(cluster, g.group, to_e4(g.point), to_e4(g.used))
    return groups
