"""Advance-reservation rules as data, and the checks of one request against them.

A profile's ``reservations:`` section says how a cluster books nodes ahead:

- ``calendar: daily`` (ABCI): whole days; a reservation of D days runs from ``starts_at`` on
  its first day to ``ends_at`` on the day after its last (10:00 to 09:30), and booking and
  cancelling close at ``booking_closes`` the day before the first day (21:00).
  ``calendar: free`` (a Slurm or stock Grid Engine site): any start time and any length.
- ``limits``: per resource type, a list of dated entries. Each entry changes only the keys it
  names, from its ``from`` date on, so a rule change is one line of data (ABCI 2.0's A-node cap
  raised from 18 to 30 nodes in 2023-05; ABCI 3.0's node-hour cap cut to 5,376 on 2025-10-28).
  The entries in force are those dated on or before the day the reservation is booked.

Pure functions: no I/O, the current time is an argument.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ..domain import ClusterProfile
from ..errors import InputError, Problem
from ..util.words import plural

DAY_HOURS = 24


@dataclass(frozen=True)
class ReservationLimits:
    """The limits in force for one resource type on one day, and where they came from."""

    resource: str
    since: dt.date
    max_nodes: int | None = None
    max_node_hours: Decimal | None = None
    min_days: Decimal = Decimal(1)
    max_days: Decimal | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReservationRules:
    """A cluster's reservation calendar and its dated limits per resource type."""

    cluster: str
    calendar: str                   # "daily" or "free"
    tz: dt.tzinfo
    starts_at: dt.time
    ends_at: dt.time
    booking_closes: dt.time
    limits: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)

    def limits_for(self, resource: str, booked_on: dt.date) -> ReservationLimits:
        """The limits for ``resource`` in force on ``booked_on`` (entries applied in date
        order, each changing only the keys it names)."""
        entries = sorted(self.limits.get(resource) or (), key=lambda e: e["from"])
        merged: dict[str, Any] = {}
        since = None
        notes: list[str] = []
        for entry in entries:
            if entry["from"] > booked_on:
                break
            merged.update({k: val for k, val in entry.items() if k not in ("from", "note")})
            since = entry["from"]
            if entry.get("note"):
                notes.append(f"{entry['from']}: {entry['note']}")
        if since is None:
            known = ", ".join(sorted(self.limits)) or "none"
            first = f" (the first rule is dated {entries[0]['from']})" if entries else ""
            raise InputError(f"no reservation rules for {resource} on {self.cluster!r}", [
                Problem("type", f"{resource} cannot be reserved on {booked_on}{first}; "
                        f"types with reservation rules: {known}")])
        return ReservationLimits(
            resource=resource, since=since, max_nodes=merged.get("max_nodes"),
            max_node_hours=_dec(merged.get("max_node_hours")),
            min_days=_dec(merged.get("min_days")) or Decimal(0 if self.calendar == "free"
                                                              else 1),
            max_days=_dec(merged.get("max_days")), notes=tuple(notes))


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True)
class Window:
    """When a reservation runs, what it is charged for, and when booking closes."""

    start: dt.datetime
    end: dt.datetime
    days: Decimal                   # charged days (node-hours = nodes x days x 24)
    booking_deadline: dt.datetime

    @property
    def usable_hours(self) -> Decimal:
        """Hours the nodes are really usable (ABCI: 30 minutes short of the charged days)."""
        return Decimal((self.end - self.start).total_seconds()) / 3600

    @property
    def charged_hours(self) -> Decimal:
        """Hours charged per node (to the microhour: a free calendar's days are hours/24)."""
        return (self.days * DAY_HOURS).quantize(Decimal("0.000001"))


@dataclass(frozen=True)
class ReservationRequest:
    """What an administrator asks for."""

    resource: str
    nodes: int
    days: Decimal
    start: dt.datetime              # aware; for a daily calendar only its date counts


def rules_of(profile: ClusterProfile) -> ReservationRules:
    """The reservation rules in ``profile``; an error when the cluster takes none."""
    data = profile.data.get("reservations")
    if not data:
        raise InputError(f"cluster {profile.name!r} has no reservation rules", [
            Problem("cluster", "add a 'reservations:' section to its profile (see "
                    "`abcitrain clusters show abci3`), or choose a cluster that takes "
                    "advance reservations")])
    return ReservationRules(
        cluster=profile.name, calendar=data["calendar"], tz=zone(data.get("timezone")),
        starts_at=dt.time.fromisoformat(data["starts_at"]),
        ends_at=dt.time.fromisoformat(data["ends_at"]),
        booking_closes=dt.time.fromisoformat(data["booking_closes"]), limits=data["limits"])


def zone(name: str | None) -> dt.tzinfo:
    """The cluster's time zone (its clock decides deadlines); this machine's when unset."""
    if name:
        return ZoneInfo(name)
    local = dt.datetime.now().astimezone().tzinfo
    assert local is not None
    return local


def window(rules: ReservationRules, req: ReservationRequest) -> Window:
    """The reservation's start, end, charged days and booking deadline."""
    if rules.calendar == "daily":
        first = req.start.astimezone(rules.tz).date()
        whole = int(req.days)
        start = dt.datetime.combine(first, rules.starts_at, rules.tz)
        end = dt.datetime.combine(first + dt.timedelta(days=whole), rules.ends_at, rules.tz)
        deadline = dt.datetime.combine(first - dt.timedelta(days=1), rules.booking_closes,
                                       rules.tz)
        return Window(start, end, Decimal(whole), deadline)
    start = req.start.astimezone(rules.tz)
    end = start + dt.timedelta(seconds=float(req.days * DAY_HOURS * 3600))
    return Window(start, end, req.days, start)


def check_request(rules: ReservationRules, req: ReservationRequest, now: dt.datetime,
                  profile: ClusterProfile) -> tuple[list[Problem], ReservationLimits, Window]:
    """Every rule the request breaks (all at once), the limits applied, and its window."""
    booked_on = now.astimezone(rules.tz).date()
    limits = rules.limits_for(req.resource, booked_on)
    win = window(rules, req)
    found: list[Problem] = []
    rtype = profile.resource_types.get(req.resource)
    if rtype is not None and not rtype.exclusive:
        found.append(Problem("type", f"{req.resource} is a shared type; reservations book "
                             "whole nodes"))
    if req.nodes < 1:
        found.append(Problem("nodes", f"{req.nodes} must be at least 1"))
    if rules.calendar == "daily" and req.days != int(req.days):
        found.append(Problem("days", f"{req.days} is not a whole number of days; "
                             f"{rules.cluster} books whole days"))
    if req.days < limits.min_days or req.days <= 0:
        found.append(Problem("days", f"{req.days} is under the minimum of "
                             f"{plural(limits.min_days, 'day')}"))
    if limits.max_days is not None and req.days > limits.max_days:
        found.append(Problem("days", f"{req.days} is over the maximum of {limits.max_days} "
                             f"days per reservation for {req.resource}"))
    if limits.max_nodes is not None and req.nodes > limits.max_nodes:
        found.append(Problem("nodes", f"{req.nodes} is over the maximum of {limits.max_nodes} "
                             f"nodes per reservation for {req.resource}"))
    node_hours = req.nodes * req.days * DAY_HOURS
    if limits.max_node_hours is not None and node_hours > limits.max_node_hours:
        found.append(Problem("node-hours", f"{req.nodes} nodes x {req.days} days x 24 h = "
                             f"{_num(node_hours)} node-hours is over the cap of "
                             f"{_num(limits.max_node_hours)} per reservation for "
                             f"{req.resource} (in force since {limits.since})"))
    if now >= win.booking_deadline:
        what = ("booking closed" if rules.calendar == "daily"
                else "the start time has passed")
        found.append(Problem("start", f"{what} at {_when(win.booking_deadline)}; the earliest "
                             f"start now is {earliest_start(rules, now):%Y-%m-%d}"
                             if rules.calendar == "daily" else
                             f"{what} ({_when(win.booking_deadline)})"))
    return found, limits, win


def earliest_start(rules: ReservationRules, now: dt.datetime) -> dt.datetime:
    """The first start that can still be booked at ``now``."""
    local = now.astimezone(rules.tz)
    if rules.calendar != "daily":
        return local
    first = local.date() + dt.timedelta(days=1)
    if local.time() >= rules.booking_closes:
        first += dt.timedelta(days=1)
    return dt.datetime.combine(first, rules.starts_at, rules.tz)


def max_days_for(limits: ReservationLimits, nodes: int, calendar: str) -> Decimal | None:
    """The longest reservation ``nodes`` nodes may have under ``limits`` (None: no cap)."""
    caps = [limits.max_days] if limits.max_days is not None else []
    if limits.max_node_hours is not None:
        most = limits.max_node_hours / (nodes * DAY_HOURS)
        caps.append(Decimal(math.floor(most)) if calendar == "daily"
                    else most.quantize(Decimal("0.0001"), rounding="ROUND_FLOOR"))
    return min(caps) if caps else None


def max_nodes_for(limits: ReservationLimits, days: Decimal) -> int | None:
    """The most nodes a reservation of ``days`` may have under ``limits``."""
    caps = [limits.max_nodes] if limits.max_nodes is not None else []
    if limits.max_node_hours is not None and days > 0:
        caps.append(int(limits.max_node_hours // (days * DAY_HOURS)))
    return min(caps) if caps else None


def _num(value: Decimal) -> str:
    return f"{value.normalize():,f}"


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()
