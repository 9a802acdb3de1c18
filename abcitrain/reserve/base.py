"""The reservation contract: each scheduler's argv and parsers. No I/O here.

Creating a reservation is spelled by the profile (``reservations.create``: ABCI's qrsub
wrappers differ from stock ones); listing, showing and deleting are fixed per scheduler.
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..backends.base import Output, explain_by


@dataclass(frozen=True)
class Reservation:
    """What a scheduler says about one advance reservation."""

    resv_id: str
    name: str = ""
    owner: str = ""
    state: str = ""
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    nodes: int | None = None
    hosts: tuple[str, ...] = ()
    group: str = ""

    def time_left_s(self, now: dt.datetime) -> int | None:
        """Seconds from ``now`` (or the start, if later) to the end; None if unknown."""
        if self.end is None:
            return None
        begin = max(now, self.start) if self.start is not None else now
        return max(0, int((self.end - begin).total_seconds()))


class ReservationBackend(ABC):
    """One scheduler's spelling of reservation commands and their answers."""

    #: Patterns of scheduler messages and what they mean, checked in order.
    explanations: Sequence[tuple[str, str]] = ()
    #: A message saying the reservation does not exist.
    missing_pattern: str = r"$^"
    #: True when a reservation has its nodes as soon as the create command returns (then
    #: abcitrain reads it back to check them); PBS confirms reservations later.
    grants_at_once: bool = True

    #: The create command's answer; its first group is the new reservation's id.
    created: re.Pattern[str]

    def parse_create(self, out: Output) -> str:
        """The new reservation's id from the create command's output."""
        m = self.created.search(out.stdout)
        if not m:
            raise ValueError(f"no reservation id in {out.stdout.strip()!r}")
        return m[1]

    @abstractmethod
    def list_argv(self) -> list[str]:
        """The command that lists reservations."""

    @abstractmethod
    def parse_list(self, out: Output, tz: dt.tzinfo) -> list[Reservation]:
        """Every reservation in a listing."""

    @abstractmethod
    def show_argv(self, resv_id: str) -> list[str]:
        """The command that shows one reservation in full."""

    @abstractmethod
    def parse_show(self, out: Output, tz: dt.tzinfo, resv_id: str) -> Reservation | None:
        """Reservation ``resv_id`` as shown, or None when the scheduler says it does not
        exist."""

    @abstractmethod
    def delete_argv(self, resv_id: str) -> list[str]:
        """The command that cancels a reservation."""

    def is_missing(self, out: Output) -> bool:
        """True when the output says the reservation does not exist."""
        return bool(re.search(self.missing_pattern, f"{out.stdout}\n{out.stderr}"))

    def explain(self, text: str) -> str | None:
        """A plain explanation of a scheduler message, when one is known."""
        return explain_by(self.explanations, text)


def pick(found: Sequence[Reservation], resv_id: str) -> Reservation | None:
    """The reservation with this id (``R123`` also matches ``R123.server``), or the only one
    shown when its id was left out (ABCI's elided samples)."""
    short = resv_id.split(".")[0]
    for resv in found:
        if resv.resv_id in (resv_id, "") or resv.resv_id.split(".")[0] == short:
            return resv
    return None


def local_time(text: str | None, fmt: str, tz: dt.tzinfo) -> dt.datetime | None:
    """A scheduler's time (written in the cluster's zone) as an aware datetime; None when
    absent or not in ``fmt``."""
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, fmt).replace(tzinfo=tz)
    except ValueError:
        return None


def hosts_of(names: Iterable[str]) -> tuple[str, ...]:
    """Distinct host names, in order, from a scheduler's host list."""
    return tuple(dict.fromkeys(h for h in names if h))


def get_reservation_backend(scheduler: str) -> ReservationBackend:
    """The reservation spelling of ``scheduler`` (imported on demand)."""
    if scheduler == "pbs":
        from .pbs import PbsReservations

        return PbsReservations()
    if scheduler == "uge":
        from .uge import GridEngineReservations

        return GridEngineReservations()
    if scheduler == "slurm":
        from .slurm import SlurmReservations

        return SlurmReservations()
    raise ValueError(f"the {scheduler} scheduler takes no advance reservations")
