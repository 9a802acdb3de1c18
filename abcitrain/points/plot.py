"""``abcitrain points --plot``: cumulative points against the budget, with the forecast.

matplotlib is imported here only, so nothing else pays for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import AbcitrainError
from .report import cumulative


def points_text(text: str) -> str:
    """A ledger amount ("1234.5000") as a reader wants it: "1,234.5" (no trailing zeros)."""
    value = Decimal(text)
    places = 2 if abs(value) >= 1 else 4          # small amounts keep what makes them
    shown = f"{value:,.{places}f}".rstrip("0").rstrip(".")
    return shown if shown not in ("-0", "") else "0"


def plot_budget(rows: Sequence[Mapping[str, Any]], report: Mapping[str, Any],
                path: Path) -> None:
    """Draw one panel per group: spend over time, the budget line, the forecast to zero."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise AbcitrainError("--plot needs matplotlib: pip install 'abcitrain[plot]'") from None
    # a panel per group that has a budget or has spent something: jobs with no group and no
    # price (the local machine's) drew an empty "(none)" panel
    groups = [g for g in report["groups"]
              if g["budget"] is not None or Decimal(g["taken"]) > 0]
    fig, axes = plt.subplots(len(groups) or 1, 1, figsize=(9, 3.6 * max(1, len(groups))),
                             squeeze=False)
    today = dt.date.fromisoformat(report["today"])
    if not groups:                       # an empty ledger: say so rather than draw nothing
        ax = axes[0, 0]
        ax.text(0.5, 0.5, "no charges recorded yet", transform=ax.transAxes, ha="center",
                va="center", fontsize=14)
        ax.set_axis_off()
    for ax, g in zip(axes[:, 0], groups, strict=False):
        grp = "" if g["group"] == "(none)" else g["group"]
        series = cumulative(rows, grp)
        if series:
            # from zero at the first charge, a marker at each (one charge is still seen)
            # ...and flat on to today: nothing taken since the last charge is a level line
            xs = [series[0][0], *(t for t, _ in series)]
            ys = [0.0, *(float(v) for _, v in series)]
            now = dt.datetime.combine(today, dt.time(), series[-1][0].tzinfo)
            if now > xs[-1]:
                xs.append(now)
                ys.append(ys[-1])
            ax.step(xs, ys, where="post", color="#1f77b4", linewidth=2, marker="o",
                    markersize=3, label="points taken")
        if g["budget"] is not None:
            budget = float(Decimal(g["budget"]))
            ax.axhline(budget, color="#d62728", linestyle="--",
                       label=f"budget {points_text(g['budget'])} points")
            over = g["remaining"] is not None and Decimal(g["remaining"]) <= 0
            if over:
                ax.text(0.99, 0.04, f"OVER BUDGET since {g['forecast_exhausted']}",
                        transform=ax.transAxes, ha="right", color="#d62728", fontsize=14,
                        fontweight="bold")
            elif g["forecast_exhausted"] and series:
                end = dt.datetime.combine(dt.date.fromisoformat(g["forecast_exhausted"]),
                                          dt.time())
                start = max(series[-1][0].replace(tzinfo=None),
                            dt.datetime.combine(today, dt.time()))
                ax.plot([start, end], [float(series[-1][1]), budget], color="#ff7f0e",
                        linestyle=":", linewidth=2,
                        label=f"forecast: runs out {g['forecast_exhausted']}")
        remaining = g["remaining"]
        left_text = ("? left" if remaining is None else f"{points_text(remaining)} left"
                     if Decimal(remaining) >= 0
                     else f"over by {points_text(str(-Decimal(remaining)))}")
        ax.set_title(f"group {g['group']}: {points_text(g['taken'])} points taken, {left_text}, "
                     f"burning {points_text(g['burn_per_day'])} per day")
        ax.set_ylabel("points taken (cumulative)")
        zone = series[0][0].tzname() if series and series[0][0].tzinfo else None
        ax.set_xlabel(f"date of submission ({zone or 'UTC'})")
        # the spend period (a day's spend still gets a day either side), dates with years;
        # points never go below zero, so neither does the axis
        span = [t.replace(tzinfo=None) for t, _ in series]
        if g["forecast_exhausted"] and g["budget"] is not None:
            span.append(dt.datetime.combine(dt.date.fromisoformat(g["forecast_exhausted"]),
                                            dt.time()))
        span.append(dt.datetime.combine(today, dt.time()))
        left, right = min(span), max(span)
        pad = max(dt.timedelta(days=1), (right - left) * 0.03)
        ax.set_xlim(left - pad, right + pad)
        ax.set_ylim(bottom=0)
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
