"""Polite polling: one scheduler query per cluster per poll, whatever the number of jobs,
shared by all of a user's abcitrain processes, backing off while nothing changes.

Peer tools have taken schedulers down with one ``qstat``/``sacct`` per job per few seconds.
Here each poll asks each cluster once about every unfinished job the user has there
(``service.following.refresh``: one queue query, plus one accounting query for the jobs that left
the queue), and only when no process of the same user asked that cluster within its minimum
interval (the job store's ``polls`` table): the others read the answer from the store.
While nothing changes the wait between polls doubles from ``START_S`` to ``MAX_S``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..batch.store import JobRecord, JobStore
from ..domain import JobState
from ..profiles import load_profile
from ..transport import Transport
from .following import refresh

#: The first wait between polls, and the longest while nothing changes.
START_S = 2.0
MAX_S = 60.0
#: A cluster's scheduler is asked at most once per this many seconds by all of a user's
#: processes together, unless its profile says ``poll: {min_interval_s: N}``.
DEFAULT_MIN_INTERVAL_S = 10.0


def min_interval_s(cluster: str) -> float:
    """The least time between two queries to ``cluster``'s scheduler (its profile's
    ``poll.min_interval_s``, else DEFAULT_MIN_INTERVAL_S)."""
    poll = load_profile(cluster).data.get("poll") or {}
    return float(poll.get("min_interval_s", DEFAULT_MIN_INTERVAL_S))


def unfinished(records: Sequence[JobRecord]) -> bool:
    """True while any of ``records`` can still change state."""
    return any(not JobState(r.state).terminal for r in records)


def poll_once(records: Sequence[JobRecord], store: JobStore,
              transport: Transport | None = None, now: float | None = None,
              failures: dict[str, str] | None = None) -> list[JobRecord]:
    """The records' latest states. Each cluster with unfinished jobs among them is asked
    once, about all of the user's unfinished jobs there, if no process asked it within its
    minimum interval; otherwise the answer another process stored is read. ``failures``:
    as for ``refresh`` (the clusters that could not be asked, the others still are)."""
    clusters = dict.fromkeys(r.cluster for r in records if not JobState(r.state).terminal)
    for cluster in clusters:
        if not store.claim_poll(cluster, min_interval_s(cluster), now):
            continue
        followed = {r.job_id: r for r in records if r.cluster == cluster}
        for other in store.recent(limit=100_000, cluster=cluster, active_only=True):
            followed.setdefault(other.job_id, other)
        refresh(list(followed.values()), store, transport, failures)
    latest = store.get_many([(r.cluster, r.job_id) for r in records])
    return [latest.get((r.cluster, r.job_id), r) for r in records]


def follow(records: Sequence[JobRecord], store: JobStore,
           done: Callable[[Sequence[JobRecord]], bool] = lambda rs: not unfinished(rs),
           transport: Transport | None = None, timeout_s: float | None = None,
           sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.time,
           on_poll: Callable[[Sequence[JobRecord]], None] | None = None) -> list[JobRecord]:
    """Poll until ``done(records)`` (by default: every record has ended) or ``timeout_s``
    passes; return the latest records. The wait starts at START_S (never below a cluster's
    minimum interval), doubles while nothing changes, up to MAX_S, and starts again from
    START_S when something changes."""
    floor = max([START_S, *(min_interval_s(c) for c in {r.cluster for r in records})])
    delay: float | None = None
    deadline = None if timeout_s is None else clock() + timeout_s
    current = list(records)
    seen = _states(current)
    while True:
        current = poll_once(current, store, transport, clock())
        if on_poll is not None:
            on_poll(current)
        if done(current):
            return current
        states = _states(current)
        delay = floor if delay is None or states != seen else min(delay * 2, max(MAX_S, floor))
        seen = states
        if deadline is not None and clock() + delay > deadline:
            return current
        sleep(delay)


def _states(records: Sequence[JobRecord]) -> list[tuple[str, str, str]]:
    return [(r.cluster, r.job_id, r.state) for r in records]
