"""The points report: spent and remaining by group, user, day and job; burn rate; forecast.

Pure functions over ledger rows and budgets, so the report, ``--json`` and ``--plot`` all
show the same numbers.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .budget import Standing
from .tariffs import from_e4

BURN_WINDOW_DAYS = 7


def taken_e4(row: Mapping[str, Any]) -> int:
    """What a ledger row takes from its group, in ten-thousandths of a point: the settled
    charge, else the estimate, less any refund."""
    actual = row["actual_e4"]
    return int((actual if actual is not None else row["estimate_e4"]) - row["refund_e4"])


def _day(row: Mapping[str, Any]) -> dt.date:
    return dt.datetime.fromisoformat(row["submitted_at"]).date()


def report(rows: Sequence[Mapping[str, Any]], standings: Mapping[str, Standing],
           today: dt.date,
           shares: Mapping[str, Mapping[str, Decimal]] | None = None) -> dict[str, Any]:
    """Everything ``abcitrain points`` shows, as plain data (Decimals as strings).

    What is left comes from ``budget.standing``, the figure the submission guard uses, so a
    synced show_point balance caps it here too. ``shares`` are the budgets' per-user shares
    (group -> user -> points), shown with what each user has left.

    The burn rate is taken over the last 7 days (fewer if spending began later); when
    nothing was spent in them, over the whole time since the first charge, so a group that
    has spent gets a forecast whenever it has a budget. The window is named in the data."""
    groups = sorted({str(r["grp"]) for r in rows} | set(standings))
    out: dict[str, Any] = {"today": today.isoformat(), "groups": []}
    for grp in groups:
        mine = [r for r in rows if r["grp"] == grp]
        taken = from_e4(sum(taken_e4(r) for r in mine))
        settled = from_e4(sum(r["actual_e4"] for r in mine if r["actual_e4"] is not None))
        pending = from_e4(sum(r["estimate_e4"] for r in mine if r["actual_e4"] is None))
        st = standings.get(grp)
        by_user: dict[str, int] = defaultdict(int)
        by_day: dict[str, int] = defaultdict(int)
        for r in mine:
            by_user[r["usr"]] += taken_e4(r)
            by_day[_day(r).isoformat()] += taken_e4(r)
        since = today - dt.timedelta(days=BURN_WINDOW_DAYS - 1)
        recent = from_e4(sum(taken_e4(r) for r in mine if _day(r) >= since))
        first_day = min((_day(r) for r in mine), default=today)
        days = max(1, min(BURN_WINDOW_DAYS, (today - first_day).days + 1))
        window = f"the last {days} day{'s' if days > 1 else ''}"
        if recent <= 0 < taken:
            days = max(1, (today - first_day).days + 1)
            recent = taken
            window = f"all {days} days since the first charge ({first_day})"
        burn = (recent / days).quantize(Decimal("0.0001"))
        users = (shares or {}).get(grp, {})
        entry: dict[str, Any] = {
            "group": grp or "(none)", "budget": str(st.budget) if st else None,
            "taken": str(taken), "settled": str(settled), "pending_estimates": str(pending),
            "remaining": str(st.remaining) if st else None,
            "show_point_remaining": (str(st.synced_remaining) if st and st.synced_at
                                     else None),
            "show_point_synced_at": st.synced_at if st else None,
            "burn_per_day": str(burn), "burn_window": window, "forecast_exhausted": None,
            "user_shares": {u: {"share": str(share), "taken": str(from_e4(by_user.get(u, 0))),
                                "left": str(share - from_e4(by_user.get(u, 0)))}
                            for u, share in sorted(users.items())},
            "by_user": {u: str(from_e4(v)) for u, v in sorted(by_user.items())},
            "by_day": {d: str(from_e4(v)) for d, v in sorted(by_day.items())},
            "jobs": [{"cluster": r["cluster"], "ref": r["ref"], "kind": r["kind"],
                      "name": r["name"], "user": r["usr"], "submitted_at": r["submitted_at"],
                      "state": r["state"], "estimate": str(from_e4(r["estimate_e4"])),
                      "actual": (str(from_e4(r["actual_e4"])) if r["actual_e4"] is not None
                                 else None),
                      "refund": str(from_e4(r["refund_e4"]))} for r in mine],
        }
        entry["over_budget_by"] = str(-st.remaining) if st and st.remaining < 0 else None
        if st and st.remaining <= 0:
            # already spent: the day it ran out, not a forecast (the first day whose
            # running total reached the budget; today when only show_point says so)
            total = Decimal(0)
            entry["forecast_exhausted"] = today.isoformat()
            for day, e4 in sorted(by_day.items()):
                total += from_e4(e4)
                if total >= st.budget:
                    entry["forecast_exhausted"] = day
                    break
        elif st and burn > 0:
            entry["forecast_exhausted"] = (today + dt.timedelta(
                days=int(st.remaining / burn))).isoformat()
        out["groups"].append(entry)
    return out


def cumulative(rows: Sequence[Mapping[str, Any]], grp: str) -> list[tuple[dt.datetime, Decimal]]:
    """(time, points taken so far) for one group, in time order, for the plot."""
    total = 0
    points = []
    for r in sorted((r for r in rows if r["grp"] == grp), key=lambda r: r["submitted_at"]):
        total += taken_e4(r)
        points.append((dt.datetime.fromisoformat(r["submitted_at"]), from_e4(total)))
    return points
