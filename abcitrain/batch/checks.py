"""Limit checks: a job spec against its cluster profile, every violation at once.

Pure functions; each finding is a ``Problem`` with a severity. Errors stop a submission
(exit status 2, nothing submitted); warnings are shown and the job goes on.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ..domain import ClusterProfile, JobSpec
from ..errors import Problem
from ..util.durations import format_hms

ERROR = "error"
WARNING = "warning"


def check_job(spec: JobSpec, profile: ClusterProfile) -> list[Problem]:
    """Return every limit violation of ``spec`` on ``profile``, errors first."""
    found: list[Problem] = []
    rtype = profile.resource_types[spec.resource]
    service = spec.service or profile.default_service
    limits = rtype.limits.get(service)

    if profile.group_required and not spec.group:
        found.append(Problem("group", f"is required on {profile.name!r}: jobs are charged to a "
                             "group (e.g. gaa50000)"))
    if service == "reserved" and not spec.reservation:
        found.append(Problem("service", "the reserved service needs a reservation id "
                             "(reservation:)"))
    cores = (spec.ranks_per_node or 1) * (spec.threads_per_rank or 1)
    if (spec.ranks_per_node or spec.threads_per_rank) and cores > rtype.cpus:
        found.append(Problem("ranks_per_node", f"{spec.ranks_per_node or 1} ranks x "
                             f"{spec.threads_per_rank or 1} threads = {cores} cores, over the "
                             f"{rtype.cpus} of {spec.resource}"))
    if not rtype.exclusive and spec.nodes > 1:
        found.append(Problem("nodes", f"{spec.nodes} nodes of {spec.resource}: a shared type "
                             "runs on one node; use a whole-node type for multi-node jobs ("
                             + ", ".join(n for n, t in profile.resource_types.items()
                                         if t.exclusive) + ")"))
    if limits is None:
        found.append(Problem("service", f"no {service} limits are known for {spec.resource} "
                             f"on {profile.name!r}; the job is not checked against any",
                             WARNING))
    else:
        if limits.max_nodes is not None and spec.nodes > limits.max_nodes:
            found.append(Problem("nodes", f"{spec.nodes} is over the {service} cap of "
                                 f"{limits.max_nodes} nodes for {spec.resource}"))
        if limits.max_walltime_s is not None and spec.walltime_s > limits.max_walltime_s:
            found.append(Problem("walltime", f"{format_hms(spec.walltime_s)} is over the "
                                 f"{service} cap of {format_hms(limits.max_walltime_s)} for "
                                 f"{spec.resource}"))
        if limits.max_node_hours is not None:
            node_hours = Decimal(spec.nodes * spec.walltime_s) / 3600
            if node_hours > limits.max_node_hours:
                most = int(limits.max_node_hours * 3600 // spec.nodes)
                found.append(Problem("walltime", f"{spec.nodes} nodes x "
                                     f"{format_hms(spec.walltime_s)} = {node_hours:.2f} "
                                     f"node-hours is over the {service} cap of "
                                     f"{limits.max_node_hours} node-hours per job; at "
                                     f"{spec.nodes} nodes the longest walltime is "
                                     f"{format_hms(most)}"))
    cap = profile.array_max_tasks
    if spec.array is not None and cap is not None and spec.array.count > cap:
        found.append(Problem("array", f"{spec.array.count} tasks is over the cap of {cap} per "
                             "array job"))
    return sorted(found, key=lambda p: p.severity != ERROR)


def errors_in(problems: list[Problem]) -> list[Problem]:
    """Only the problems that stop a submission."""
    return [p for p in problems if p.severity == ERROR]


def retirement_problem(profile: ClusterProfile, today: dt.date,
                       severity: str = "error") -> Problem | None:
    """A problem when ``profile`` names a system retired on or before ``today``."""
    retired = profile.data.get("retired")
    if retired is None or today < retired:
        return None
    return Problem("cluster", f"{profile.name} ({profile.description}) was retired on "
                   f"{retired}: it takes no jobs or reservations; its prices remain for "
                   "history", severity)
