"""Reservation planning: check a request, price it, and find what would fit instead.

Two directions. Forward: a request (type, nodes, days, start) is checked against the dated
rules; when it breaks one, the nearest feasible alternatives are proposed (fewer nodes, fewer
days, the same node-days on fewer nodes, back-to-back reservations, a later start), each
checked and priced. Reverse: the node-hours (or GPU-hours) a run needs become the cheapest
reservation plans that fit the rules, counting only the hours the nodes are usable.
Pure functions: the clock and the profile are arguments.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from decimal import Decimal

from ..domain import ClusterProfile
from ..errors import InputError, Problem
from ..points.tariffs import quote, reservation_points
from ..util.words import plural
from .rules import (
    DAY_HOURS,
    ReservationLimits,
    ReservationRequest,
    ReservationRules,
    Window,
    check_request,
    earliest_start,
    max_days_for,
    max_nodes_for,
    window,
)


@dataclass(frozen=True)
class Booking:
    """One reservation of a plan, with its window and price."""

    nodes: int
    days: Decimal
    window: Window
    points: Decimal | None


@dataclass(frozen=True)
class Option:
    """A plan of one or more back-to-back reservations that fits the rules."""

    label: str
    bookings: tuple[Booking, ...]
    notes: tuple[str, ...] = ()

    @property
    def points(self) -> Decimal | None:
        """Total price, or None when the cluster has no prices."""
        prices = [b.points for b in self.bookings if b.points is not None]
        return sum(prices, Decimal(0)) if len(prices) == len(self.bookings) else None

    @property
    def node_hours(self) -> Decimal:
        """Charged node-hours."""
        return sum((b.nodes * b.window.charged_hours for b in self.bookings), Decimal(0))

    @property
    def usable_node_hours(self) -> Decimal:
        """Node-hours the nodes are really usable."""
        return sum((b.nodes * b.window.usable_hours for b in self.bookings), Decimal(0))


@dataclass(frozen=True)
class RequestPlan:
    """The verdict on one request: problems, limits, window, price and alternatives."""

    request: ReservationRequest
    problems: list[Problem]
    limits: ReservationLimits
    window: Window
    points: Decimal | None
    alternatives: list[Option] = field(default_factory=list)


def price(profile: ClusterProfile, resource: str, nodes: int, days: Decimal,
          booked_on: dt.date) -> Decimal | None:
    """Points charged at booking, or None when the profile has no prices for that day."""
    if not profile.data.get("tariffs"):
        return None
    try:
        q = quote(profile, resource, "reserved", booked_on)
    except InputError:
        return None         # a plan still shows the rules; a booking asks quote() itself
    return reservation_points(q, nodes, days)


def plan_request(rules: ReservationRules, profile: ClusterProfile, req: ReservationRequest,
                 now: dt.datetime) -> RequestPlan:
    """Check ``req``; when it breaks a rule, propose the nearest plans that fit."""
    problems, limits, win = check_request(rules, req, now, profile)
    booked_on = now.astimezone(rules.tz).date()
    cost = price(profile, req.resource, req.nodes, win.days, booked_on)
    alternatives = _alternatives(rules, profile, req, now, limits) if problems else []
    return RequestPlan(req, problems, limits, win, cost, alternatives)


def _booking(rules: ReservationRules, profile: ClusterProfile, req: ReservationRequest,
             booked_on: dt.date) -> Booking:
    win = window(rules, req)
    return Booking(req.nodes, win.days, win,
                   price(profile, req.resource, req.nodes, win.days, booked_on))


def _fits(rules: ReservationRules, profile: ClusterProfile, req: ReservationRequest,
          now: dt.datetime) -> bool:
    return not check_request(rules, req, now, profile)[0]


def _alternatives(rules: ReservationRules, profile: ClusterProfile, req: ReservationRequest,
                  now: dt.datetime, limits: ReservationLimits) -> list[Option]:
    booked_on = now.astimezone(rules.tz).date()
    start = req.start
    if now >= window(rules, req).booking_deadline:
        start = earliest_start(rules, now)
    moved = start != req.start
    base = replace(req, start=start)
    nodes_cap = min(req.nodes, limits.max_nodes or req.nodes)
    candidates: list[tuple[str, list[ReservationRequest], list[str]]] = []
    if moved:
        candidates.append(("a later start", [base], []))
    most_nodes = max_nodes_for(limits, req.days)
    if most_nodes is not None and 1 <= most_nodes < req.nodes:
        candidates.append(("fewer nodes", [replace(base, nodes=most_nodes)], []))
    most_days = max_days_for(limits, nodes_cap, rules.calendar)
    if most_days is not None and limits.min_days <= most_days < req.days:
        candidates.append(("fewer days", [replace(base, nodes=nodes_cap, days=most_days)], []))
    if nodes_cap < req.nodes:
        # the same node-days on the nodes allowed, over more days
        days = _round_days(req.nodes * req.days / nodes_cap, rules.calendar)
        candidates.append(("the same node-days on fewer nodes",
                           [replace(base, nodes=nodes_cap, days=days)], []))
    if most_days is not None and most_days >= max(limits.min_days, Decimal("0.0001")) \
            and req.days > most_days:
        parts = _split(req.days, most_days, rules.calendar)
        chain, at = [], start
        for days in parts:
            part = replace(base, nodes=nodes_cap, days=days, start=at)
            chain.append(part)
            at = _next_start(rules, part)
        candidates.append((f"{len(parts)} back-to-back reservations", chain, [
            f"{plural(len(parts) - 1, 'break')} between reservations (a daily calendar loses 30 "
            "minutes at each): checkpoint before each end and resume in the next",
            "each is booked, charged and cancelled on its own"]))
    options: list[Option] = []
    seen: set[tuple[tuple[int, Decimal, dt.datetime], ...]] = set()
    for label, chain, notes in candidates:
        key = tuple((r.nodes, r.days, r.start) for r in chain)
        if key in seen or not all(_fits(rules, profile, r, now) for r in chain):
            continue
        seen.add(key)
        extra = [f"starts {window(rules, chain[0]).start:%Y-%m-%d %H:%M} instead"] if moved \
            else []
        options.append(Option(label, tuple(_booking(rules, profile, r, booked_on)
                                           for r in chain), tuple(notes + extra)))
    return options


def _round_days(days: Decimal, calendar: str) -> Decimal:
    """Up to whole days (daily calendar) or whole hours (free calendar)."""
    if calendar == "daily":
        return Decimal(math.ceil(days))
    return Decimal(math.ceil(days * DAY_HOURS)) / DAY_HOURS


def _split(total: Decimal, most: Decimal, calendar: str) -> list[Decimal]:
    """``total`` days as the fewest parts of at most ``most`` days each: near-equal whole
    days on a daily calendar; full-length parts and the remainder on a free one."""
    count = math.ceil(total / most)
    if calendar == "daily":
        whole = int(total)
        return [Decimal(whole // count + (1 if i < whole % count else 0)) for i in range(count)]
    return [most] * (count - 1) + [total - most * (count - 1)]


def _next_start(rules: ReservationRules, req: ReservationRequest) -> dt.datetime:
    """Where the next back-to-back reservation starts (the day this one ends)."""
    end = window(rules, req).end
    if rules.calendar == "daily":
        return dt.datetime.combine(end.date(), rules.starts_at, rules.tz)
    return end


def plans_for_need(rules: ReservationRules, profile: ClusterProfile, resource: str,
                   node_hours: Decimal, start: dt.datetime, now: dt.datetime,
                   count: int = 5, within_days: int | None = None) -> list[Option]:
    """The cheapest reservation plans that give ``node_hours`` usable node-hours.

    For each node count the fewest days (split into back-to-back reservations where one
    may not be that long) are found; plans are ranked by price, then by how soon they end,
    and the fastest plan is always shown. ``within_days`` keeps only plans that end within
    that many days of the start."""
    booked_on = now.astimezone(rules.tz).date()
    limits = rules.limits_for(resource, booked_on)
    if now >= window(rules, ReservationRequest(resource, 1, Decimal(1), start)) \
            .booking_deadline:
        start = earliest_start(rules, now)
    most_nodes = limits.max_nodes or max(1, math.ceil(node_hours / DAY_HOURS))
    found: list[Option] = []
    for nodes in range(1, most_nodes + 1):
        option = _fewest_days(rules, profile, resource, nodes, node_hours, start, now,
                              limits, booked_on)
        if option is not None and (within_days is None or option.bookings[-1].window.end
                                   <= start + dt.timedelta(days=within_days)):
            found.append(option)
    if not found:
        return []

    def cost_key(o: Option) -> tuple[Decimal, Decimal, int, dt.datetime]:
        return (o.node_hours, o.points or Decimal(0), len(o.bookings), o.bookings[-1].window.end)

    ranked = sorted(found, key=cost_key)
    fastest = min(found, key=lambda o: (o.bookings[-1].window.end, o.node_hours))
    chosen = ranked[:count]
    if fastest not in chosen:
        chosen.append(fastest)
    return chosen


def _fewest_days(rules: ReservationRules, profile: ClusterProfile, resource: str, nodes: int,
                 need: Decimal, start: dt.datetime, now: dt.datetime,
                 limits: ReservationLimits, booked_on: dt.date) -> Option | None:
    most = max_days_for(limits, nodes, rules.calendar)
    if most is not None and (most < limits.min_days or most <= 0):
        return None
    per_node = need / nodes
    # each reservation gives (days x 24 - the unusable tail) usable hours per node
    one_day = window(rules, ReservationRequest(resource, nodes, Decimal(1), start))
    tail = one_day.charged_hours - one_day.usable_hours
    for parts in range(1, 1000):
        days = _round_days((per_node + tail * parts) / DAY_HOURS, rules.calendar)
        days = max(days, limits.min_days * parts)
        if most is None or days <= most * parts:
            break
    else:
        return None
    split = _split(days, most, rules.calendar) if most is not None and days > most else [days]
    chain, at = [], start
    for part_days in split:
        req = ReservationRequest(resource, nodes, part_days, at)
        if not _fits(rules, profile, req, now):
            return None
        chain.append(_booking(rules, profile, req, booked_on))
        at = _next_start(rules, req)
    hours = f"{(days * DAY_HOURS).quantize(Decimal('0.01')).normalize():f}"
    length = plural(days, "day") if rules.calendar == "daily" else plural(hours, "hour")
    label = f"{plural(nodes, 'node')} x {length}" + (f" in {len(split)} reservations"
                                             if len(split) > 1 else "")
    return Option(label, tuple(chain))
