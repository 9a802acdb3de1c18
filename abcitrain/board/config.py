"""What the organizer's board shows: the teams (groups), the event's end, the refresh interval.

From a small YAML file, options, or both (options win)::

    title: ABCI hackathon 2026
    ends: 2026-12-10T18:00+09:00      # the event's end: forecasts are drawn to it
    refresh_s: 60                     # one scheduler query per cluster per interval
    groups:
      - gaa50000
      - {group: gaa50001, team: Team Blue}
    show_point: [abci3]               # clusters whose show_point balances are synced
    reservations: [abci3]             # clusters whose reservations are drawn

Budgets come from the project's abcitrain.yaml, as for ``abcitrain points``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol

from ..errors import InputError, Problem
from ..profiles.loader import available_names
from ..util import validation as v
from ..util.words import did_you_mean
from ..util.yamlio import load_yaml_file

#: Group names as ABCI and the schedulers spell them (also what reaches a directive line).
GROUP = v.matching(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", "a group is letters, digits, '_', "
                   "'.' and '-', up to 64 characters")
#: Seconds between two refreshes: never below the polite polling interval.
MIN_REFRESH_S = 10
DEFAULT_REFRESH_S = 60


def _when(value: Any) -> dt.datetime:
    """An ISO date or date-time; a date means its end of day, no zone means this machine's."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time(23, 59, 59))
    elif isinstance(value, str):
        try:
            moment = (dt.datetime.fromisoformat(value) if "T" in value or " " in value
                      else dt.datetime.combine(dt.date.fromisoformat(value),
                                               dt.time(23, 59, 59)))
        except ValueError:
            raise vol.Invalid(f"{value[:40]!r} is not a date (YYYY-MM-DD) or a date and "
                              "time (YYYY-MM-DDTHH:MM, optionally +HH:MM)") from None
    else:
        raise vol.Invalid(f"{value!r} is not a date")
    return moment if moment.tzinfo else moment.astimezone()


SCHEMA = vol.Schema({
    vol.Optional("title", default="abcitrain board"): vol.All(str, vol.Length(max=120)),
    vol.Optional("ends", default=None): v.nullable(_when),
    vol.Optional("refresh_s", default=DEFAULT_REFRESH_S): v.int_between(MIN_REFRESH_S, 86400),
    vol.Optional("groups", default=[]): [vol.Any(
        GROUP, {vol.Required("group"): GROUP,
                vol.Optional("team"): vol.All(str, vol.Length(min=1, max=80))})],
    vol.Optional("show_point", default=[]): [str],
    vol.Optional("reservations", default=[]): [str],
})


@dataclass(frozen=True)
class Team:
    """One team: its group (the ledger's and the scheduler's) and the name shown."""

    group: str
    name: str


@dataclass(frozen=True)
class BoardConfig:
    """Everything the board needs besides the ledger, the job store and the budgets."""

    title: str
    teams: tuple[Team, ...]
    ends: dt.datetime | None = None
    refresh_s: int = DEFAULT_REFRESH_S
    show_point: tuple[str, ...] = ()
    reservation_clusters: tuple[str, ...] = ()
    groups: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(t.group for t in self.teams))


def load_board(path: Path | None, groups: Sequence[str] = (), ends: str | None = None,
               refresh_s: int | None = None, title: str | None = None) -> BoardConfig:
    """The board's settings from ``path`` (if given) and the options; every problem in one
    InputError."""
    data: dict[str, Any] = {}
    if path is not None:
        loaded = load_yaml_file(path)
        if loaded is not None and not isinstance(loaded, dict):
            raise InputError(f"{path} has errors", [Problem(
                str(path), "a board file is a mapping (title, ends, refresh_s, groups, ...)")])
        data = dict(loaded or {})
    if groups:
        data["groups"] = list(groups)
    if ends is not None:
        data["ends"] = ends
    if refresh_s is not None:
        data["refresh_s"] = refresh_s
    if title is not None:
        data["title"] = title
    checked: dict[str, Any] = v.validate(SCHEMA, data, f"{path or 'the board options'} "
                                         "has errors")
    teams: list[Team] = []
    problems: list[Problem] = []
    for item in checked["groups"]:
        team = Team(item, item) if isinstance(item, str) else \
            Team(item["group"], item.get("team") or item["group"])
        if any(t.group == team.group for t in teams):
            problems.append(Problem("groups", f"{team.group} is listed twice"))
        teams.append(team)
    known = available_names()
    for key in ("show_point", "reservations"):
        for name in checked[key]:
            if name not in known:
                problems.append(Problem(key, f"unknown cluster {name[:60]!r}"
                                        f"{did_you_mean(name, known)}"))
    if not teams:
        problems.append(Problem("groups", "no group to show: list them in the board file's "
                                "groups, or pass --group (repeatable)"))
    if problems:
        raise InputError(f"{path or 'the board options'} has errors", problems)
    return BoardConfig(checked["title"], tuple(teams), checked["ends"], checked["refresh_s"],
                       tuple(checked["show_point"]), tuple(checked["reservations"]))
