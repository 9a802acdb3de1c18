"""Slurm reservations: scontrol create / show -o / delete reservation.

A Slurm reservation's id is the name it was created with.
"""

from __future__ import annotations

import datetime as dt
import re

from ..answers import Output
from ..reservations import Reservation, ReservationBackend, local_time, pick

_CREATED = re.compile(r"Reservation created: (\S+)")
_PAIR = re.compile(r"(\w+)=(\S*)")
_ISO = "%Y-%m-%dT%H:%M:%S"


class SlurmReservations(ReservationBackend):
    """scontrol ... reservation."""

    missing_pattern = r"Reservation \S+ not found|Requested reservation is invalid"
    created = _CREATED
    explanations = (
        (r"Requested nodes are busy|Reservation request overlaps|[Nn]odes? .*(busy|in use)",
         "the nodes are not free for the whole period: choose other times or fewer nodes"),
        (r"Access/permission denied|Access denied|Invalid user", "only Slurm operators and "
         "administrators may create or delete reservations"),
        (r"Reservation \S+ not found|Requested reservation is invalid",
         "the reservation is not known (it may have ended, or been deleted)"),
        (r"Requested reservation is in use", "jobs are still running in it: cancel them "
         "(`abcitrain cancel`) or let them end, then cancel the reservation"),
        (r"Duplicate reservation name|already exists", "a reservation with this name exists: "
         "choose another name"),
        (r"Invalid partition", "the partition is not known: check the profile's "
         "reservations.type_args"),
    )

    def parse_create(self, out: Output) -> str:
        # scontrol's confirmation is read from both streams (the base reads stdout only)
        m = self.created.search(out.stdout + out.stderr)
        if not m:
            raise ValueError(f"no reservation name in {out.stdout.strip()!r}")
        return m[1]

    def parse_list(self, out: Output, tz: dt.tzinfo) -> list[Reservation]:
        found = []
        for line in out.stdout.splitlines():
            attrs = dict(_PAIR.findall(line))
            if "ReservationName" not in attrs:
                continue
            count = attrs.get("NodeCnt", "")
            found.append(Reservation(
                resv_id=attrs["ReservationName"], name=attrs["ReservationName"],
                owner=attrs.get("Users", ""), state=attrs.get("State", ""),
                start=local_time(attrs.get("StartTime"), _ISO, tz),
                end=local_time(attrs.get("EndTime"), _ISO, tz),
                nodes=int(count) if count.isdigit() else None,
                hosts=(attrs["Nodes"],) if attrs.get("Nodes") else (),
                group=_null(attrs.get("Accounts", ""))))
        return found

    def parse_show(self, out: Output, tz: dt.tzinfo, resv_id: str) -> Reservation | None:
        if out.returncode != 0 and self.is_missing(out):
            return None
        return pick(self.parse_list(out, tz), resv_id)


def _null(text: str) -> str:
    return "" if text == "(null)" else text

