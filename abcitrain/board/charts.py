"""The board's pictures: each team's burn-down with its forecast to the event's end, and one
timeline of reservations and running jobs across teams.

Drawn with matplotlib as SVG and shipped inside the page as ``data:`` images: nothing comes
from a network, an SVG inside an <img> runs no script, and the page stays one file for
``--html``. matplotlib is imported here only.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from ..errors import AbcitrainError
from ..points.plot import points_text as shown_points
from ..points.report import cumulative
from ..reserve.gantt import zone_label

_JOB_COLOUR = "tab:blue"
_RESERVATION_COLOUR = "tab:cyan"
#: The timeline shows at least this much either side of now.
_MIN_SIDE = dt.timedelta(hours=1)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AbcitrainError("the board draws with matplotlib: pip install "
                             "'abcitrain[board]'") from None
    return plt


def _data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    _pyplot().close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def burn_chart(team: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], now: dt.datetime,
               ends: dt.datetime | None) -> str:
    """Points taken over time against the budget, and the spend projected at the team's burn
    rate to the event's end (or to the day it runs out), as an SVG data URI."""
    plt = _pyplot()
    import matplotlib.dates as mdates

    fig, ax = plt.subplots(figsize=(5.6, 2.6))
    series = [(t.astimezone(now.tzinfo), v) for t, v in cumulative(rows, team["group"])]
    xs = [now - dt.timedelta(days=1)] if not series else [series[0][0]]
    ys = [0.0]
    xs += [t for t, _ in series]
    ys += [float(v) for _, v in series]
    xs.append(max(now, xs[-1]))
    ys.append(ys[-1])
    ax.step(xs, ys, where="post", color=_JOB_COLOUR, linewidth=2, label="points taken")
    budget = float(Decimal(team["budget"])) if team["budget"] is not None else None
    if budget is not None:
        ax.axhline(budget, color="#d62728", linestyle="--",
                   label=f"budget {shown_points(team['budget'])}")
    burn = float(Decimal(team["burn_per_day"]))
    until = ends
    if until is None and team["runs_out_on"]:
        until = dt.datetime.combine(dt.date.fromisoformat(team["runs_out_on"]), dt.time(),
                                    now.tzinfo)
    if until is not None and until > now and burn > 0:
        days = (until - now).total_seconds() / 86400
        colour = "#d62728" if team["warning"] else "#ff7f0e"
        ax.plot([now, until], [ys[-1], ys[-1] + burn * days], color=colour, linestyle=":",
                linewidth=2, label=f"at {shown_points(team['burn_per_day'])} a day")
    if ends is not None:
        ax.axvline(ends, color="black", linewidth=1, label="event ends")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("points taken")
    ax.set_xlabel(f"date ({zone_label(now)})")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6, tz=now.tzinfo)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=now.tzinfo))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return _data_uri(fig)


def timeline_chart(reservations: Sequence[Mapping[str, Any]],
                   running: Sequence[tuple[str, Mapping[str, Any]]],
                   now: dt.datetime) -> str | None:
    """One bar per reservation and per running job (team: name), across teams, with a legend
    and the time zone on the axis; None when there is nothing to draw."""
    bars: list[tuple[str, dt.datetime, dt.datetime, str]] = []
    for r in reservations:
        if r["start"] and r["end"]:
            label = f"{r['group'] or r['cluster']}: reservation {r['id']}"
            bars.append((label, dt.datetime.fromisoformat(r["start"]),
                         dt.datetime.fromisoformat(r["end"]), _RESERVATION_COLOUR))
    for team, job in running:
        start = now - dt.timedelta(seconds=job["elapsed_s"]) if job["elapsed_s"] else \
            dt.datetime.fromtimestamp(job["submitted_at"], now.tzinfo)
        bars.append((f"{team}: {job['name']}", start, now, _JOB_COLOUR))
    if not bars:
        return None
    plt = _pyplot()
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    to_num = cast(Callable[[dt.datetime], float], mdates.date2num)
    # at least an hour either side of now: a job that started a second ago is a sliver at
    # "now" on a readable axis, not a bar filling an axis a second wide
    low = min([to_num(b[1]) for b in bars] + [to_num(now - _MIN_SIDE)])
    high = max([to_num(b[2]) for b in bars] + [to_num(now + _MIN_SIDE)])
    span = high - low
    fig, ax = plt.subplots(figsize=(11, 1.3 + 0.38 * len(bars)))
    for i, (_, start, end, colour) in enumerate(bars):
        left = to_num(start)
        ax.barh(i, max(to_num(end) - left, span / 150), left=left, height=0.6, color=colour,
                edgecolor="black", lw=0.5)
    ax.axvline(to_num(now), color="red", ls="--", lw=1)
    ax.set_xlim(low - span / 50, high + span / 50)
    ax.set_yticks(range(len(bars)), [b[0][:60] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=now.tzinfo))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=now.tzinfo))  # type: ignore[no-untyped-call]
    ax.set_xlabel(f"time ({zone_label(now)})")
    ax.legend(handles=[Patch(facecolor=_RESERVATION_COLOUR, edgecolor="black",
                             label="reservation"),
                       Patch(facecolor=_JOB_COLOUR, edgecolor="black", label="running job"),
                       ax.get_lines()[0]], labels=["reservation", "running job", "now"],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _data_uri(fig)
