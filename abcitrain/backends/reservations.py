"""The reservation contract: what a scheduler's reservation commands say. No I/O here.

A backend that takes advance reservations returns its reader from
``Backend.reservations`` (``backends/<name>/reservations.py``).

Every command is spelled by the profile (``reservations.create``, ``list``, ``show``,
``delete``): ABCI's qrsub/qrstat/qrdel wrap PBS's pbs_rsub/pbs_rstat/pbs_rdel, and on a
machine with Grid Engine installed the ``qr*`` names are Grid Engine's own. A backend only
reads the answers.
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .answers import Output, explain_by


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

    def __init__(self, commands: Mapping[str, Sequence[str]] | None = None) -> None:
        #: The profile's ``reservations`` argv templates by verb ({id}: a reservation id).
        self.commands = dict(commands or {})

    def argv(self, verb: str, resv_id: str = "") -> list[str]:
        """The profile's command for ``verb`` (list, show, delete), filled in."""
        template = self.commands.get(verb)
        if not template:
            raise MissingCommand(verb)
        return [item.format(id=resv_id) for item in template]

    def list_argv(self) -> list[str]:
        """The command that lists reservations."""
        return self.argv("list")

    @abstractmethod
    def parse_list(self, out: Output, tz: dt.tzinfo) -> list[Reservation]:
        """Every reservation in a listing."""

    def show_argv(self, resv_id: str) -> list[str]:
        """The command that shows one reservation in full."""
        return self.argv("show", resv_id)

    @abstractmethod
    def parse_show(self, out: Output, tz: dt.tzinfo, resv_id: str) -> Reservation | None:
        """Reservation ``resv_id`` as shown, or None when the scheduler says it does not
        exist."""

    def delete_argv(self, resv_id: str) -> list[str]:
        """The command that cancels a reservation."""
        return self.argv("delete", resv_id)

    def is_missing(self, out: Output) -> bool:
        """True when the output says the reservation does not exist."""
        return bool(re.search(self.missing_pattern, f"{out.stdout}\n{out.stderr}"))

    def explain(self, text: str) -> str | None:
        """A plain explanation of a scheduler message, when one is known."""
        return explain_by(self.explanations, text)


class MissingCommand(LookupError):
    """The profile names no command for a reservation verb."""

    def __init__(self, verb: str) -> None:
        super().__init__(verb)
        self.verb = verb


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
