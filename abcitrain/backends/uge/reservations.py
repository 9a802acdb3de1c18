"""Grid Engine advance reservations: qrsub, qrstat, qrstat -ar ID, qrdel.

The same formats on ABCI 2.0 (Univa, captured outputs) and stock Son of Grid Engine (run for
real in the tests).
"""

from __future__ import annotations

import datetime as dt
import re

from ..answers import Output
from ..reservations import Reservation, ReservationBackend, hosts_of, local_time

_CREATED = re.compile(r"Your advance reservation (\d+) has been granted")
_ROW = re.compile(r"^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)\s+"
                  r"(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)\s+(\S+)", re.M)
_SGE_TIME = "%m/%d/%Y %H:%M:%S"


class GridEngineReservations(ReservationBackend):
    """qrsub / qrstat / qrdel."""

    missing_pattern = r"advance reservations? do(es)? not exist|does not exist"
    created = _CREATED
    explanations = (
        (r"no suitable queues", "not enough free hosts for the whole period (or a resource "
         "or parallel environment no host offers): choose other times or fewer nodes"),
        (r"arusers|must be manager", "only Grid Engine managers and members of the arusers "
         "list may book reservations (on ABCI: the group's responsible person)"),
        (r"does not exist", "the reservation id is not known (it may have ended, or been "
         "cancelled)"),
        (r"SIM4403|points", "the group has too few points left for this reservation"),
    )

    def parse_list(self, out: Output, tz: dt.tzinfo) -> list[Reservation]:
        return [Reservation(resv_id=m[1], name=m[2], owner=m[3], state=m[4],
                            start=local_time(m[5], _SGE_TIME, tz),
                            end=local_time(m[6], _SGE_TIME, tz))
                for m in _ROW.finditer(out.stdout)]

    def parse_show(self, out: Output, tz: dt.tzinfo, resv_id: str) -> Reservation | None:
        if out.returncode != 0 and self.is_missing(out):
            return None
        attrs: dict[str, str] = {}
        for line in out.stdout.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and re.fullmatch(r"[a-z_]+", parts[0]):
                attrs.setdefault(parts[0], parts[1].strip())
        if "id" not in attrs and "granted_slots_list" not in attrs:
            return None
        # all.q@vm=1,all.q@sgenode1=1 (ABCI: gpu@g0001=80,...): one entry per queue instance
        hosts = hosts_of(re.findall(r"@([^=,\s]+)=", attrs.get("granted_slots_list", "")))
        return Reservation(
            resv_id=attrs.get("id", resv_id), name=attrs.get("name", ""),
            owner=attrs.get("owner", ""), state=attrs.get("state", ""),
            start=local_time(attrs.get("start_time"), _SGE_TIME, tz),
            end=local_time(attrs.get("end_time"), _SGE_TIME, tz),
            nodes=len(hosts) or None, hosts=hosts, group=attrs.get("account", ""))

