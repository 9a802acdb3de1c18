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
from typing import cast

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
    if not rows:
        raise AbcitrainError("nothing to plot: no reservation with known start and end times")
    tz = now.tzinfo
    # matplotlib's date2num has no type hints; it maps a datetime to days since its epoch
    to_num = cast(Callable[[dt.datetime], float], mdates.date2num)
    span = max(to_num(r[2]) for r in rows) - min(to_num(r[1]) for r in rows) or 1.0
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(rows)))
    for i, (_, start, end, colour, text) in enumerate(rows):
        left, right = to_num(start), to_num(end)
        # a short job still shows as a sliver, its label beside it rather than on it
        width = max(right - left, span / 400)
        ax.barh(i, width, left=left, height=0.6, color=colour, edgecolor="black", lw=0.5)
        if width > span / 5:
            ax.text(left + width / 2, i, text, ha="center", va="center", fontsize=8)
        else:
            ax.text(left + width + span / 200, i, text, ha="left", va="center", fontsize=8)
    ax.axvline(to_num(now), color="red", ls="--", lw=1, label="now")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(
        mdates.DateFormatter("%m-%d %H:%M", tz=tz))  # type: ignore[no-untyped-call]
    fig.autofmt_xdate()
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
