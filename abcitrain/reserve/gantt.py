"""``abcitrain reserve show --plot``: a timeline of reservations and the jobs inside them.

Reservation bars come from the scheduler (exact start and end). Job bars come from
abcitrain's job store, which knows when a job was submitted, how long it ran and when its
end was seen: a finished job is drawn ending when abcitrain saw it end (the poll after the
real end), a running one ending now. matplotlib is imported here only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from ..backends.reservations import Reservation
from ..batch.store import JobRecord
from ..domain import JobState
from ..errors import AbcitrainError

_COLOURS = {"COMPLETED": "tab:green", "RUNNING": "tab:blue", "FAILED": "tab:red",
            "TIMEOUT": "tab:orange", "CANCELLED": "tab:gray", "PENDING": "tab:purple"}


def job_span(rec: JobRecord, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """When a job ran, as well as the job store knows (see the module docstring)."""
    tz = now.tzinfo
    terminal = JobState(rec.state).terminal
    end = dt.datetime.fromtimestamp(rec.updated_at, tz) if terminal and rec.updated_at \
        else now
    if rec.elapsed_s is not None:
        start = end - dt.timedelta(seconds=rec.elapsed_s)
    else:
        start = dt.datetime.fromtimestamp(rec.submitted_at, tz)
    return start, max(end, start)


def zone_label(now: dt.datetime) -> str:
    """The time zone's name and offset, as a reader needs it: "JST, UTC+09:00"."""
    offset = now.strftime("%z")
    text = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    name = now.tzname() or ""
    return f"{name}, {text}" if name and not name.startswith(("UTC", "+", "-")) else text


def plot_timeline(reservations: Sequence[Reservation],
                  jobs: Mapping[str, Sequence[JobRecord]], path: Path,
                  now: dt.datetime, title: str) -> None:
    """One row per reservation (its node count on the bar) and one per job inside it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise AbcitrainError("--plot needs matplotlib: pip install 'abcitrain[plot]'") from None
    rows: list[tuple[str, dt.datetime, dt.datetime, str, str]] = []
    for resv in reservations:
        if resv.start is None or resv.end is None:
            continue
        nodes = f"{resv.nodes} nodes" if resv.nodes else ""
        label = resv.resv_id if resv.name in ("", resv.resv_id) else \
            f"{resv.resv_id} {resv.name}"
        rows.append((label, resv.start, resv.end,
                     "tab:cyan", nodes))
        for rec in jobs.get(resv.resv_id, ()):
            start, end = job_span(rec, now)
            rows.append((f"  job {rec.job_id} {rec.name}", start, end,
                         _COLOURS.get(rec.state, "tab:olive"),
                         f"{rec.spec.get('nodes', 1)} nodes, {rec.state}"))
    tz = now.tzinfo
    if not rows:
        # nothing to draw is an answer too: a picture that says so, not an error
        fig, ax = plt.subplots(figsize=(10, 2.2))
        ax.text(0.5, 0.5, "no reservation with known start and end times to draw",
                transform=ax.transAxes, ha="center", va="center", fontsize=13)
        ax.set_axis_off()
        ax.set_title(title)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    # matplotlib's date2num has no type hints; it maps a datetime to days since its epoch
    to_num = cast(Callable[[dt.datetime], float], mdates.date2num)
    span = max(to_num(r[2]) for r in rows) - min(to_num(r[1]) for r in rows) or 1.0
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(rows)))
    for i, (_, start, end, colour, text) in enumerate(rows):
        left, right = to_num(start), to_num(end)
        # a short job still shows, as a sliver of a few pixels, its label beside it
        width = max(right - left, span / 150)
        ax.barh(i, width, left=left, height=0.6, color=colour, edgecolor="black", lw=0.5)
        if width > span / 5:
            ax.text(left + width / 2, i, text, ha="center", va="center", fontsize=8)
        else:
            ax.text(left + width + span / 200, i, text, ha="left", va="center", fontsize=8)
    ax.axvline(to_num(now), color="red", ls="--", lw=1, label="now")
    # what each colour means: the reservation, and the states of the jobs drawn
    from matplotlib.patches import Patch

    states = dict.fromkeys(r[3] for r in rows)
    handles: list[Any] = [Patch(facecolor="tab:cyan", edgecolor="black", label="reservation")]
    handles += [Patch(facecolor=colour, edgecolor="black", label=f"job {state.lower()}")
                for state, colour in _COLOURS.items() if colour in states]
    handles += ax.get_legend_handles_labels()[0]
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    # ticks on round hours of the reservation's own time zone, not at 13:48
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=tz))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(
        mdates.DateFormatter("%m-%d %H:%M", tz=tz))  # type: ignore[no-untyped-call]
    fig.autofmt_xdate()
    ax.set_xlabel(f"time ({zone_label(now)})")
    ax.set_title(title)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
