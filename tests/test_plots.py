"""The pictures, checked as a reader would look at them (each also looked at as a PNG when
it was changed): axis labels with units and the time zone, a legend for every colour,
amounts without ledger decimals, no empty panel, a 3-second job still visible, and "nothing
to draw" said in the picture rather than as an error."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

matplotlib = pytest.importorskip("matplotlib")


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every figure saved during the test, kept for inspection."""
    from matplotlib.figure import Figure

    saved: list[Any] = []
    original = Figure.savefig

    def keep(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def _charge(day: str, e4: int, grp: str = "g1") -> dict[str, Any]:
    return {"cluster": "abci3", "ref": f"{day}-{grp}-{e4}", "kind": "job", "grp": grp,
            "usr": "alice", "name": "j", "submitted_at": f"{day}T10:00:00+00:00",
            "state": "COMPLETED", "estimate_e4": e4, "actual_e4": e4, "refund_e4": 0}


def test_the_burn_down_reads_without_questions(figures: list[Any], tmp_path: Path) -> None:
    from abcitrain.points.budget import Standing
    from abcitrain.points.plot import plot_budget
    from abcitrain.points.report import report

    rows = [_charge("2026-11-10", 600000), _charge("2026-11-14", 1234567),
            _charge("2026-11-25", 800000, "team2"), _charge("2026-11-28", 0, "")]
    standings = {"g1": Standing("g1", Decimal(1000), Decimal("183.4567"),
                                Decimal("816.5433")),
                 "team2": Standing("team2", Decimal(50), Decimal(80), Decimal(-30))}
    data = report(rows, standings, dt.date(2026, 11, 30))
    plot_budget(rows, data, tmp_path / "burn.png")
    [fig] = figures
    titles = [ax.get_title() for ax in fig.axes]
    # the group-less, price-less charge drew an empty "(none)" panel
    assert len(fig.axes) == 2 and not any("(none)" in t for t in titles), titles
    assert titles[0] == "group g1: 183.46 points taken, 816.54 left, burning 8.74 per day"
    assert "over by 30" in titles[1]
    for ax in fig.axes:
        assert ax.get_xlabel() == "date of submission (UTC)"
        assert ax.get_ylabel() == "points taken (cumulative)"
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "points taken" in labels and any(lb.startswith("budget ") for lb in labels)
    assert "OVER BUDGET since 2026-11-25" in [t.get_text() for t in fig.axes[1].texts]


def test_the_timeline_explains_its_colours_and_time_zone(figures: list[Any],
                                                         tmp_path: Path) -> None:
    from abcitrain.backends.reservations import Reservation
    from abcitrain.batch.store import JobRecord
    from abcitrain.reserve.gantt import plot_timeline

    tz = ZoneInfo("Asia/Tokyo")
    now = dt.datetime(2026, 12, 6, 15, 0, tzinfo=tz)
    resv = Reservation("R1.pbs1", "hack", "alice", "RUNNING",
                       dt.datetime(2026, 12, 6, 10, 0, tzinfo=tz),
                       dt.datetime(2026, 12, 7, 9, 30, tzinfo=tz), 4)

    def job(i: int, state: str, elapsed: int, ended_ago: float) -> JobRecord:
        return JobRecord(cluster="abci3", job_id=f"{i}.pbs1", scheduler="pbs",
                         name=f"train{i}", submitted_at=now.timestamp() - 20000,
                         submit_dir="/p", script_path="x", output="o", array_tasks=None,
                         state=state, exit_code=0, elapsed_s=elapsed, detail="",
                         cancel_requested=False, spec={"nodes": 2},
                         updated_at=now.timestamp() - ended_ago)

    plot_timeline([resv], {"R1.pbs1": [job(1, "COMPLETED", 3, 14000),
                                       job(2, "FAILED", 3600, 7000)]},
                  tmp_path / "t.png", now, "abci3")
    [fig] = figures
    [ax] = fig.axes
    assert ax.get_xlabel() == "time (JST, UTC+09:00)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["reservation", "job completed", "job failed", "now"], labels
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)            # the figure was closed: draw it again
    canvas.draw()
    renderer = canvas.get_renderer()
    bars = [p for p in ax.patches if p.get_height() == 0.6]
    # the 3-second job, on a day-long axis: still a few pixels wide
    assert min(b.get_window_extent(renderer).width for b in bars) >= 3


def test_nothing_to_draw_is_a_picture_that_says_so(figures: list[Any], tmp_path: Path) -> None:
    from abcitrain.reserve.gantt import plot_timeline

    now = dt.datetime(2026, 12, 6, 15, 0, tzinfo=ZoneInfo("UTC"))
    plot_timeline([], {}, tmp_path / "empty.png", now, "abci3")       # no error: exit 0
    assert (tmp_path / "empty.png").read_bytes()[:4] == b"\x89PNG"
    [fig] = figures
    assert "no reservation with known start and end times to draw" in \
        [t.get_text() for t in fig.axes[0].texts]
