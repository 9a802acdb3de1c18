"""Points: dated tariffs and ABCI's charging formula. Pure functions; Decimal throughout.

points = service coeff x type coeff x priority coeff x count x max(elapsed, minimum) / 3600,
rounded half-up at the 5th decimal (4 decimals kept, as ``show_point`` prints them).
A reservation costs reserved coeff x type coeff x nodes x days x 24, charged at booking.
A job is priced at the tariff in force on the day it was submitted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..domain import ClusterProfile, JobSpec
from ..errors import InputError, Problem

QUANTUM = Decimal("0.0001")
E4 = 10_000           # the ledger stores points as integer ten-thousandths


@dataclass(frozen=True)
class Quote:
    """The rates that price one job: which tariff entries were in force, and their values."""

    resource: str
    service: str
    type_rate: Decimal          # points per unit-hour (the type coefficient)
    service_coeff: Decimal
    type_from: dt.date
    service_from: dt.date
    minimum_s: Decimal
    note: str = ""

    def describe(self) -> str:
        """One line: the rates and the dates they took effect."""
        extra = f", {self.note}" if self.note else ""
        return (f"{self.resource} at {self.type_rate} points/h from {self.type_from}{extra}; "
                f"{self.service} x{self.service_coeff}")


def round_points(value: Decimal) -> Decimal:
    """Round half-up at the 5th decimal, keeping 4."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def to_e4(points: Decimal) -> int:
    """Points as integer ten-thousandths (exact)."""
    return int(round_points(points) * E4)


def from_e4(value: int) -> Decimal:
    """Integer ten-thousandths back to points."""
    return (Decimal(value) / E4).quantize(QUANTUM)


def _entries(items: Sequence[Mapping[str, Any]], when: dt.date) -> Mapping[str, Any] | None:
    chosen = None
    for item in sorted(items, key=lambda i: i["from"]):
        if item["from"] <= when:
            chosen = item
    return chosen


def quote(profile: ClusterProfile, resource: str, service: str, when: dt.date) -> Quote:
    """The rates in force on ``when``; an error names what is missing and how to add it."""
    tariffs: Mapping[str, Any] = profile.data.get("tariffs") or {}
    problems = []
    type_items = (tariffs.get("types") or {}).get(resource) or []
    type_entry = _entries(type_items, when)
    if type_entry is None:
        first = min((i["from"] for i in type_items), default=None)
        problems.append(Problem(f"tariffs.types.{resource}", "no price is known" + (
            f" before {first}" if first else "") + f" on {profile.name!r}; add one in your "
            f"profile (abcitrain clusters show {profile.name})"))
    service_entry = _entries(tariffs.get("services") or [], when)
    if service_entry is None or service not in service_entry:
        problems.append(Problem("tariffs.services", f"no {service} coefficient is known on "
                                f"{when} for {profile.name!r}"))
    if problems:
        raise InputError(f"cannot price this job on {when}", problems)
    assert type_entry is not None and service_entry is not None
    return Quote(resource=resource, service=service,
                 type_rate=Decimal(str(type_entry["rate"])),
                 service_coeff=Decimal(str(service_entry[service])),
                 type_from=type_entry["from"], service_from=service_entry["from"],
                 minimum_s=Decimal(str(tariffs.get("minimum_seconds", 0))),
                 note=str(type_entry.get("note", "")))


def job_points(q: Quote, count: int, seconds: float | Decimal,
               priority: Decimal = Decimal(1)) -> Decimal:
    """ABCI's formula for one job (or one array task) that ran ``seconds``."""
    return from_e4(job_points_e4(q, count, seconds, priority))


def job_points_e4(q: Quote, count: int, seconds: float | Decimal | int,
                  priority: Decimal = Decimal(1)) -> int:
    """The same formula in integer ten-thousandths, exact (integer arithmetic, half-up)."""
    return PointsFormula(q, priority)(count, seconds)


class PointsFormula:
    """ABCI's formula with one quote's rates turned into integers once, for bulk pricing."""

    def __init__(self, q: Quote, priority: Decimal = Decimal(1)) -> None:
        self.rate_num, self.rate_den = (q.service_coeff * q.type_rate * priority) \
            .as_integer_ratio()
        self.min_num, self.min_den = q.minimum_s.as_integer_ratio()

    def __call__(self, count: int, seconds: float | Decimal | int) -> int:
        """Points x 10^4 for ``count`` units over ``seconds``, rounded half-up."""
        if isinstance(seconds, int):
            sec_num, sec_den = seconds, 1
        else:
            sec_num, sec_den = Decimal(str(seconds)).as_integer_ratio()
        if sec_num * self.min_den < self.min_num * sec_den:
            sec_num, sec_den = self.min_num, self.min_den
        num = self.rate_num * count * sec_num * E4
        den = self.rate_den * sec_den * 3600
        return (2 * num + den) // (2 * den)


def reservation_points(q: Quote, nodes: int, days: Decimal | int) -> Decimal:
    """Points charged at booking for ``nodes`` nodes over ``days`` days (q: reserved)."""
    return round_points(q.service_coeff * q.type_rate * nodes * days * 24)


def units(spec: JobSpec) -> int:
    """How many resource units a job is charged for (nodes of its type)."""
    return spec.nodes


def max_charge(spec: JobSpec, profile: ClusterProfile, when: dt.date,
               overrun_s: int = 0) -> tuple[Decimal, Quote]:
    """What a job costs if it runs its requested walltime (plus ``overrun_s``: the time the
    scheduler may let it run past it) on every node, for every array task.

    ABCI pre-deducts the walltime's charge at start and refunds the difference at the end."""
    q = quote(profile, spec.resource, spec.service or profile.default_service, when)
    tasks = spec.array.count if spec.array else 1
    return job_points(q, units(spec), spec.walltime_s + overrun_s) * tasks, q
