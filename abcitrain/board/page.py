"""The board as one HTML page (templates/board.html.j2): autoescaped, no script, pictures
inside it, so the same text serves the live board and ``board --html``."""

from __future__ import annotations

from typing import Any

import jinja2

from ..batch.render import templates_dir
from ..reserve.gantt import zone_label
from ..util.durations import format_hms
from .charts import burn_chart, timeline_chart
from .config import BoardConfig
from .snapshot import Snapshot, collect, refresh


def _hms(seconds: int | None) -> str:
    return "-" if seconds is None else format_hms(int(seconds))


def render_page(snap: Snapshot, refresh_s: int | None) -> str:
    """The page for ``snap``; ``refresh_s``: reload every so many seconds (None: never, as
    for a file to share)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["hms"] = _hms
    board = snap.data
    ends = snap.config.ends
    charts = {t["group"]: burn_chart(t, snap.rows, snap.now, ends) for t in board["teams"]}
    running = [(t["team"], j) for t in board["teams"] for j in t["jobs"]["running"]]
    timeline = timeline_chart(board["reservations"], running, snap.now)
    return env.get_template("board.html.j2").render(
        board=board, charts=charts, timeline=timeline, refresh_s=refresh_s,
        zone=zone_label(snap.now))


def build_page(config: BoardConfig) -> tuple[str, dict[str, Any]]:
    """One round of the served board: ask the schedulers, gather, draw. The page (reloading
    itself every ``refresh_s``) and its data."""
    snap = collect(config, refresh(config))
    return render_page(snap, config.refresh_s), snap.data
