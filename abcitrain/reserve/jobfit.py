"""A job against the reservation it names: pure checks, no I/O (the service looks the
reservation up and counts my running jobs, then asks here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..domain import JobSpec, JobState
from ..errors import Problem
from ..util.durations import format_hms

if TYPE_CHECKING:
    from ..backends.reservations import Reservation
    from ..batch.store import JobRecord


def fit_problems(spec: JobSpec, resv: Reservation, running_nodes: int,
                 now: dt.datetime) -> list[Problem]:
    """Check a job against reservation ``resv``: the job's nodes fit in it
    (``running_nodes``: my jobs already running in it), and its walltime ends before the
    reservation does (a job past the end is killed)."""
    where = "reservation"
    found: list[Problem] = []
    if resv.nodes is not None:
        if spec.nodes > resv.nodes:
            found.append(Problem("nodes", f"{spec.nodes} is more than the {resv.nodes} nodes "
                                 f"reserved in {spec.reservation}"))
        elif spec.nodes + running_nodes > resv.nodes:
            found.append(Problem("nodes", f"{running_nodes} of the {resv.nodes} reserved nodes "
                                 f"are busy with your running jobs; this job waits until "
                                 f"{spec.nodes} are free", "warning"))
    if resv.end is not None:
        if resv.end <= now:
            found.append(Problem(where, f"{spec.reservation} ended at "
                                 f"{resv.end:%Y-%m-%d %H:%M %Z}"))
        else:
            left = resv.time_left_s(now) or 0
            if spec.walltime_s > left:
                found.append(Problem("walltime", f"{format_hms(spec.walltime_s)} runs past the "
                                     f"end of {spec.reservation} at "
                                     f"{resv.end:%Y-%m-%d %H:%M %Z}, where the job would be "
                                     f"killed; the longest walltime that fits is "
                                     f"{format_hms(left)}"))
    if resv.start is not None and resv.start > now:
        found.append(Problem(where, f"{spec.reservation} starts at "
                             f"{resv.start:%Y-%m-%d %H:%M %Z}; the job waits until then",
                             "warning"))
    return found


def running_nodes_in(records: Sequence[JobRecord], resv_id: str) -> int:
    """Nodes my running jobs hold in reservation ``resv_id`` (from the job store)."""
    return sum(int(rec.spec.get("nodes") or 1) for rec in records
               if rec.spec.get("reservation") == resv_id
               and rec.state == JobState.RUNNING.value)
