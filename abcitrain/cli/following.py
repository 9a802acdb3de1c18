"""``abcitrain status | cancel | release | logs``: following the jobs already submitted.

Each verb parses its options and calls ``abcitrain.service.following``, imported inside the
verb so that ``--help`` stays cheap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import click

from ..util.tables import table_lines
from ..util.words import plural


def wait_status(state: str, exit_code: int | None) -> int:
    """`submit --wait`'s exit status, as srun's: the job's own exit status (0-255) when it
    has one; 1 when it did not complete and has none (cancelled before starting)."""
    if state == "COMPLETED":
        return 0
    if exit_code is not None and 0 < exit_code < 256:
        return exit_code
    return 1


def _recorded(store: Any, job_ids: Sequence[str]) -> Any:
    """The job store; when there is none yet (reading never creates it), asking for a job
    by id is an error naming the ids."""
    if store is None and job_ids:
        from ..errors import InputError, Problem

        raise InputError("no such job", [Problem(j, "abcitrain did not submit a job with "
                                                 "this id (it has recorded no jobs yet)")
                                         for j in job_ids])
    return store


def _tasks(record: Any) -> list[dict[str, Any]]:
    """An array's tasks as last known, each with its sweep parameters (if a sweep)."""
    sweep = record.spec.get("sweep") or [] if isinstance(record.spec, dict) else []
    out = []
    for index, state, exit_code in record.tasks:
        params = sweep[int(index) - 1] if index.isdigit() and 0 < int(index) <= len(sweep) \
            else None
        out.append({"index": index, "state": state, "exit_code": exit_code, "params": params})
    return out


def _chain(record: Any) -> dict[str, object] | None:
    from ..service.chains import chain_of

    return chain_of(record)


def _fmt_elapsed(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


@click.command()
@click.argument("job_ids", nargs=-1)
@click.option("--cluster", help="Only jobs on this cluster.")
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many recent jobs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--tasks", "show_tasks", is_flag=True,
              help="List each array task (a sweep's with its parameters).")
@click.option("--fresh", is_flag=True,
              help="Ask the schedulers now, even if one of your abcitrain processes asked "
              "within the cluster's minimum poll interval (default: reuse that answer).")
def status(job_ids: tuple[str, ...], cluster: str | None, limit: int, as_json: bool,
           show_tasks: bool, fresh: bool) -> None:
    """Show my jobs (or JOB_IDS): one scheduler query per cluster for all of them.

    A chain's stages show as NAME [CHAIN i/n]; a sweep's jobs show their task count."""
    from ..batch.store import JobStore
    from ..service import following
    from ..service.poll import poll_once

    store = _recorded(JobStore.existing(), job_ids)
    if store is None:
        records = []
    elif job_ids:
        records = [following.find_record(store, j, cluster) for j in job_ids]
    else:
        records = store.recent(limit=limit, cluster=cluster)
    failures: dict[str, str] = {}
    if store is not None:
        records = (following.refresh(records, store, failures=failures) if fresh
                   else poll_once(records, store, failures=failures))
    for name, why in failures.items():
        # the other clusters' jobs are still shown, refreshed
        click.echo(f"warning: {name} could not be asked ({why}); its jobs show the state "
                   "last seen", err=True)
    if as_json:
        click.echo(json.dumps([{
            "cluster": r.cluster, "job_id": r.job_id, "name": r.name, "state": r.state,
            "exit_code": r.exit_code, "elapsed_s": r.elapsed_s, "detail": r.detail,
            "submitted_at": r.submitted_at, "array_tasks": r.array_tasks,
            "updated_at": r.updated_at, "chain": _chain(r),
            "sweep": r.spec.get("sweep") or None, "tasks": _tasks(r)} for r in records],
            indent=1))
        return
    if not records:
        click.echo("no jobs recorded yet: `abcitrain submit JOB.yaml` records each one")
        return
    rows = [("JOB ID", "CLUSTER", "NAME", "STATE", "EXIT", "ELAPSED", "SUBMITTED", "DETAIL")]
    for r in records:
        step = _chain(r)
        name = r.name if step is None else \
            f"{r.name} [{step['chain']} {step['index']}/{step['count']}]"
        if r.spec.get("sweep"):
            name += f" (sweep of {len(r.spec['sweep'])})"
        rows.append((r.job_id, r.cluster, name, r.state,
                     "-" if r.exit_code is None else str(r.exit_code),
                     _fmt_elapsed(r.elapsed_s),
                     time.strftime("%m-%d %H:%M", time.localtime(r.submitted_at)), r.detail))
    for line in table_lines(rows):
        click.echo(line)
    for r in records if show_tasks else ():
        tasks = _tasks(r)
        if not tasks:
            continue
        click.echo(f"\n{r.cluster} job {r.job_id} ({r.name}): {plural(len(tasks), 'task')}")
        task_table = [("TASK", "STATE", "EXIT", "PARAMETERS")]
        for t in tasks:
            params = " ".join(f"{k}={v}" for k, v in (t["params"] or {}).items())
            task_table.append((t["index"], t["state"],
                               "-" if t["exit_code"] is None else str(t["exit_code"]), params))
        for line in table_lines(task_table):
            click.echo(line)


@click.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--cluster", help="The cluster, when an id exists on several.")
def cancel(job_ids: tuple[str, ...], cluster: str | None) -> None:
    """Cancel jobs abcitrain submitted."""
    from ..batch.store import JobStore
    from ..service import following

    store = _recorded(JobStore.existing(), job_ids)
    assert store is not None
    for rec in following.cancel(job_ids, store, cluster):
        click.echo(f"cancel requested: {rec.cluster} job {rec.job_id} ({rec.name})")


@click.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--cluster", help="The cluster, when an id exists on several.")
def release(job_ids: tuple[str, ...], cluster: str | None) -> None:
    """Release jobs submitted with --hold (qrls / scontrol release)."""
    from ..batch.store import JobStore
    from ..service import following

    store = _recorded(JobStore.existing(), job_ids)
    assert store is not None
    for rec in following.release(job_ids, store, cluster):
        click.echo(f"released: {rec.cluster} job {rec.job_id} ({rec.name})")


@click.command()
@click.argument("job_id")
@click.option("--task", type=int, help="The array task whose output to show.")
@click.option("--cluster", help="The cluster, when an id exists on several.")
@click.option("--path", "path_only", is_flag=True, help="Print only the output file's path.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
def logs(job_id: str, task: int | None, cluster: str | None, path_only: bool,
         follow: bool) -> None:
    """Print a job's output file."""
    from ..batch.store import JobStore
    from ..service import following

    store = _recorded(JobStore.existing(), (job_id,))
    assert store is not None
    record = following.find_record(store, job_id, cluster)
    path = following.output_path(record, task)
    if path_only:
        click.echo(path)
    elif follow:
        follow_output(store, job_id, record.cluster, task=task)
    else:
        click.echo(following.logs(job_id, store, task, record.cluster)[1], nl=False)


def follow_output(store: Any, job_id: str, cluster: str, task: int | None = None,
            show: bool = True) -> Any:
    """Print a job's output as it grows until the job ends; return its final record."""
    from ..domain import JobState
    from ..errors import TransportError
    from ..service import following
    from ..service.poll import poll_once

    shown = 0
    delay = 0.5
    while True:
        # the job's state through the shared poller (one query per cluster per interval for
        # all of this user's processes); the output file is read on every round
        record = poll_once([following.find_record(store, job_id, cluster)], store)[0]
        done = JobState(record.state).terminal
        if show:
            try:
                text = following.logs(job_id, store, task, cluster)[1]
            except TransportError:
                text = ""
            click.echo(text[shown:], nl=False)
            shown = len(text)
        if done:
            return record
        time.sleep(delay)
        delay = min(delay * 1.5, 10.0)     # back off: polls cost the scheduler
