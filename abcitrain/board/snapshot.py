"""The board's data: one refresh of the schedulers, then every team's numbers as plain data.

``refresh`` is the only part that talks to schedulers, once per interval whatever the number
of teams: one queue query per cluster for all unfinished jobs (plus the accounting query for
those that left the queue, which settles their charges: ``service.following.refresh``), one
``show_point`` per cluster listed under ``show_point`` and one reservation list per cluster
listed under ``reservations``. ``collect`` then only reads the ledger and the job store, so
the page shows exactly what ``abcitrain points --json`` and ``abcitrain status --json`` would.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..backends.reservations import Reservation
from ..batch.store import JobRecord, JobStore
from ..errors import AbcitrainError
from ..points.report import taken_e4
from ..points.tariffs import from_e4
from ..service.common import existing_ledger
from ..service.points_report import points_report
from .config import BoardConfig

#: Jobs read from the job store per refresh (the newest): a hackathon's worth.
MAX_JOBS = 5000
#: Finished and failed jobs listed per team (the newest first); the counts cover all.
LISTED_ENDED = 25


@dataclass
class Sources:
    """What one refresh learnt besides the stores: reservations and the clusters that could
    not be asked (cluster -> one line why)."""

    reservations: list[tuple[str, Reservation]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def refresh(config: BoardConfig) -> Sources:
    """Ask the schedulers once for this interval (see the module docstring). A cluster that
    cannot be asked is recorded in ``failures`` and the others are still asked."""
    from ..profiles import load_profile
    from ..service import following
    from ..service.points_report import sync_show_point
    from ..service.reservations import list_reservations

    found = Sources()
    store = JobStore.existing()
    if store is not None:
        active = store.recent(limit=MAX_JOBS, active_only=True)
        following.refresh(active, store, failures=found.failures)
    for cluster in config.show_point:
        try:
            sync_show_point(cluster)
        except AbcitrainError as exc:
            found.failures[f"{cluster} show_point"] = _first_line(exc)
    for cluster in config.reservation_clusters:
        try:
            found.reservations += [(cluster, r) for r in list_reservations(
                load_profile(cluster))]
        except AbcitrainError as exc:
            found.failures[f"{cluster} reservations"] = _first_line(exc)
    return found


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _category(state: str) -> str:
    if state == "RUNNING":
        return "running"
    if state in ("FAILED", "TIMEOUT"):
        return "failed"
    if state in ("PENDING", "HELD"):
        return "queued"
    # COMPLETED, CANCELLED, and UNKNOWN (the scheduler forgot it): ended, its state shown
    return "finished"


def _nodes(value: Any) -> int | None:
    """The nodes a recorded spec asked for (1 when it did not say; None when unreadable)."""
    if value is None:
        return 1
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _job_row(rec: JobRecord, charge: dict[str, Any] | None) -> dict[str, Any]:
    points = str(from_e4(taken_e4(charge))) if charge is not None else None
    return {"cluster": rec.cluster, "job_id": rec.job_id, "name": rec.name,
            "state": rec.state, "exit_code": rec.exit_code,
            "nodes": _nodes(rec.spec.get("nodes")), "resource": rec.spec.get("resource"),
            "elapsed_s": rec.elapsed_s, "submitted_at": rec.submitted_at,
            "updated_at": rec.updated_at, "points": points,
            "points_settled": charge is not None and charge["actual_e4"] is not None,
            "source": "abcitrain"}


#: The scheduler's own state words in accounting records, as abcitrain's states.
_ACCOUNTED = {"COMPLETED": "COMPLETED", "CANCELLED": "CANCELLED", "TIMEOUT": "TIMEOUT",
              "PENDING": "PENDING", "RUNNING": "RUNNING", "HELD": "HELD"}


def _epoch(iso: str | None, default: float) -> float:
    if not iso:
        return default
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return default
    return (moment if moment.tzinfo else moment.astimezone()).timestamp()


def _charged_row(row: dict[str, Any]) -> dict[str, Any]:
    """A job known only from its charge (``source``: accounting, or a store moved aside)."""
    submitted = _epoch(row["submitted_at"], 0.0)
    return {"cluster": row["cluster"], "job_id": row["ref"], "name": row["name"],
            # FAILED, OUT_OF_MEMORY, NODE_FAIL, ... : every other word is a failure
            "state": _ACCOUNTED.get(str(row["state"]).upper(), "FAILED"), "exit_code": None,
            "nodes": int(row["units"]), "resource": row["resource"],
            "elapsed_s": int(row["elapsed_s"]) if row["elapsed_s"] is not None else None,
            "submitted_at": submitted, "updated_at": _epoch(row["settled_at"], submitted),
            "points": str(from_e4(taken_e4(row))),
            "points_settled": row["actual_e4"] is not None,
            "source": "accounting" if row["source"] != "submit" else "abcitrain"}


@dataclass(frozen=True)
class Snapshot:
    """The board at one moment: ``data`` is what the page and /data.json show; ``rows`` are
    the teams' ledger rows the burn-downs are drawn from."""

    data: dict[str, Any]
    rows: list[dict[str, Any]]
    now: dt.datetime
    config: BoardConfig


def collect(config: BoardConfig, sources: Sources | None = None,
            now: dt.datetime | None = None) -> Snapshot:
    """Every team's budget, spend, forecast and jobs, the reservations, as plain data."""
    now = now or dt.datetime.now().astimezone()
    sources = sources or Sources()
    ledger = existing_ledger()
    rows = ledger.rows() if ledger is not None else []       # read once for both below
    made = points_report(list(config.groups), today=now.date(), ledger=ledger, rows=rows)
    by_group = {g["group"]: g for g in made.data["groups"]}
    charges = {(r["cluster"], r["ref"]): r for r in rows if r["kind"] == "job"}
    store = JobStore.existing()
    records = store.recent(limit=MAX_JOBS) if store is not None else []
    in_store = {(rec.cluster, rec.job_id) for rec in records}
    teams = []
    for team in config.teams:
        entry = by_group.get(team.group)
        mine = [_job_row(rec, charges.get((rec.cluster, rec.job_id))) for rec in records
                if _group_of(rec, charges) == team.group]
        # jobs the ledger holds but the store does not: imported from the scheduler's
        # accounting (run without abcitrain), or from a job store moved aside
        mine += [_charged_row(row) for key, row in charges.items()
                 if row["grp"] == team.group and key not in in_store]
        mine.sort(key=lambda job: -job["submitted_at"])          # newest first
        jobs: dict[str, list[dict[str, Any]]] = {
            "running": [], "queued": [], "finished": [], "failed": []}
        for job in mine:
            jobs[_category(job["state"])].append(job)
        reserved = from_e4(sum(taken_e4(row) for row in made.rows
                               if row["grp"] == team.group and row["kind"] == "reservation"))
        teams.append({
            "group": team.group, "team": team.name,
            "budget": entry["budget"] if entry else None,
            "spent": entry["taken"] if entry else "0.0000",
            "reserved": str(reserved),
            "left": entry["remaining"] if entry else None,
            "burn_per_day": entry["burn_per_day"] if entry else "0.0000",
            "burn_window": entry["burn_window"] if entry else "",
            "runs_out_on": entry["forecast_exhausted"] if entry else None,
            "over_budget_by": entry["over_budget_by"] if entry else None,
            "warning": _warning(entry, config.ends),
            "counts": {k: len(v) for k, v in jobs.items()},
            "jobs": {k: (v if k in ("running", "queued") else v[:LISTED_ENDED])
                     for k, v in jobs.items()},
            "by_day": entry["by_day"] if entry else {},
        })
    data = {
        "title": config.title, "generated_at": now.isoformat(timespec="seconds"),
        "zone": now.strftime("%Z") or now.strftime("%z"),
        "ends": config.ends.isoformat(timespec="minutes") if config.ends else None,
        "refresh_s": config.refresh_s, "teams": teams,
        "reservations": [_reservation_row(cluster, r) for cluster, r in sources.reservations
                         if not r.group or r.group in config.groups],
        "failures": dict(sources.failures),
    }
    return Snapshot(data, made.rows, now, config)


def _group_of(rec: JobRecord, charges: dict[tuple[str, str], dict[str, Any]]) -> str:
    """The group a job was charged to (the ledger's word), else the one its spec names."""
    charge = charges.get((rec.cluster, rec.job_id))
    if charge is not None:
        return str(charge["grp"])
    return str(rec.spec.get("group") or "")


def _warning(entry: dict[str, Any] | None, ends: dt.datetime | None) -> str | None:
    """One line when the team has run out, or will before the event ends."""
    if entry is None or entry["budget"] is None:
        return None
    if entry["remaining"] is not None and Decimal(entry["remaining"]) <= 0:
        over = f", over by {entry['over_budget_by']}" if entry["over_budget_by"] else ""
        return f"out of points since {entry['forecast_exhausted']}{over}"
    day = entry["forecast_exhausted"]
    if day and ends is not None and dt.date.fromisoformat(day) <= ends.date():
        return (f"at {entry['burn_per_day']} points a day this team runs out on {day}, "
                f"before the event ends ({ends.date().isoformat()})")
    return None


def _reservation_row(cluster: str, r: Reservation) -> dict[str, Any]:
    return {"cluster": cluster, "id": r.resv_id, "name": r.name, "group": r.group,
            "state": r.state, "nodes": r.nodes,
            "start": r.start.isoformat() if r.start else None,
            "end": r.end.isoformat() if r.end else None}
