"""PBS Professional reservations: the answers of pbs_rsub and pbs_rstat -f.

ABCI's qrstat/qrsub/qrdel are PBS's pbs_rstat/pbs_rsub/pbs_rdel under ABCI's names (the
profiles abci3 and pbs name the commands); the formats are PBS's (tested against captured
ABCI, Aurora and live OpenPBS outputs: PBS is not installable here). The full form
(``-f``) is used for listing too: the short table gives no date for a start this week, and
ABCI's qrstat truncates every id after the first (a known issue, 2025-10).
"""

from __future__ import annotations

import datetime as dt
import re

from ..answers import Output
from ..reservations import Reservation, ReservationBackend, hosts_of, local_time, pick

_CREATED = re.compile(r"^(R[0-9]+(?:\.[A-Za-z0-9-]+)*)\s+(UNCONFIRMED|CONFIRMED)\b", re.M)
_PBS_TIME = "%a %b %d %H:%M:%S %Y"


class PbsReservations(ReservationBackend):
    """The answers of qrsub / qrstat -f (pbs_rsub / pbs_rstat -f)."""

    missing_pattern = r"[Uu]nknown [Rr]eservation|[Rr]eservation .* does not exist"
    created = _CREATED
    grants_at_once = False      # qrsub answers UNCONFIRMED; PBS assigns the nodes later
    explanations = (
        (r"[Uu]nknown [Rr]eservation", "the reservation id is not known (it may have "
         "ended, or been cancelled)"),
        (r"[Nn]ot enough free nodes|[Rr]eservation.*(denied|DENIED)|would conflict",
         "the nodes are not free for the whole period: see `qrstat --available` for free "
         "nodes per day, and choose other dates or fewer nodes"),
        (r"[Uu]nauthorized|[Pp]ermission denied|not authorized",
         "only a group's responsible person or administrator may book or cancel reservations"),
    )

    def parse_list(self, out: Output, tz: dt.tzinfo) -> list[Reservation]:
        return [r for r in (_block(b, tz) for b in re.split(r"\n\s*\n", out.stdout)) if r]

    def parse_show(self, out: Output, tz: dt.tzinfo, resv_id: str) -> Reservation | None:
        if out.returncode != 0 and self.is_missing(out):
            return None
        return pick(self.parse_list(out, tz), resv_id)


def _block(text: str, tz: dt.tzinfo) -> Reservation | None:
    attrs: dict[str, str] = {}
    resv_id = ""
    for line in text.splitlines():
        if line.startswith("Resv ID:"):
            resv_id = line.split(":", 1)[1].strip()
        elif " = " in line:
            key, value = line.split(" = ", 1)
            attrs[key.strip()] = value.strip()
    if not resv_id and not attrs:
        return None
    # resv_nodes: (host[0]:ncpus=96+host[1]:ncpus=96)+(...): a node may show as several vnodes
    hosts = hosts_of(re.sub(r"\[\d+\]$", "", h)
                     for h in re.findall(r"[(+]([^:()+]+):", attrs.get("resv_nodes", "")))
    nodect = attrs.get("Resource_List.nodect")
    return Reservation(
        resv_id=resv_id, name=attrs.get("Reserve_Name", ""),
        owner=attrs.get("Reserve_Owner", "").split("@")[0],
        state=attrs.get("reserve_state", ""),
        start=local_time(attrs.get("reserve_start"), _PBS_TIME, tz),
        end=local_time(attrs.get("reserve_end"), _PBS_TIME, tz),
        nodes=int(nodect) if nodect and nodect.isdigit() else (len(hosts) or None),
        hosts=hosts, group=attrs.get("Authorized_Groups", "").split(",")[0])

