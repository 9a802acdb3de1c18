"""Job specs and chains from Python: plan, render, submit, wait, read the output.

::

    from abcitrain.api import submission

    plan = submission.plan({"name": "hello", "cluster": "local", "resource": "cpu",
                            "walltime": "0:05:00", "command": ["echo", "hi"]})
    print(plan.script)                     # what `abcitrain render` prints
    job = submission.submit(plan)          # checked, priced, guarded, recorded
    record = job.wait()                    # the shared poller; record.state, exit_code
    print(job.output())

``spec`` may be a path to a YAML file, a mapping of its keys, or a plan; ``overrides`` set
keys as ``--set`` does (``{"walltime": "2:00:00", "train.steps": 100}``). Errors are the
CLI's: ``InputError`` lists every problem at once, ``SchedulerError`` quotes the scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..batch.render import JobPlan
from ..batch.store import JobRecord, JobStore
from ..service import chains as chain_service
from ..service import following, plans, submitting
from ..service.poll import follow as _follow
from ..service.poll import poll_once

SpecLike = JobPlan | Mapping[str, Any] | str | Path


def plan(spec: SpecLike, overrides: Mapping[str, Any] | None = None,
         write_training: bool = False) -> JobPlan:
    """Validate, check and render ``spec`` (what ``abcitrain render`` shows); raises
    InputError listing every problem when it cannot be submitted."""
    if isinstance(spec, JobPlan):
        return spec
    pairs = list((overrides or {}).items())
    if isinstance(spec, Mapping):
        planned = plans.plan_mapping(spec, write_training=write_training, overrides=pairs)
    else:
        planned = plans.load_plan(Path(spec), write_training=write_training, overrides=pairs)
    plans.require_submittable(planned)
    return planned


@dataclass
class Job:
    """A submitted job: follow it, read its output, cancel it."""

    cluster: str
    job_id: str
    name: str
    submission: submitting.Submission
    _store: JobStore = field(repr=False)

    def record(self) -> JobRecord:
        """What abcitrain last learnt about the job (no scheduler query)."""
        return following.find_record(self._store, self.job_id, self.cluster)

    def status(self) -> JobRecord:
        """The job's state through the shared poller (at most one query per cluster per
        its minimum interval, for all of this user's processes)."""
        return poll_once([self.record()], self._store)[0]

    def wait(self, timeout_s: float | None = None) -> JobRecord:
        """Follow the job until it ends (or ``timeout_s`` passes); its latest record."""
        return follow([self], timeout_s)[0]

    def output(self, task: int | None = None) -> str:
        """The job's output file (an array task's with ``task``)."""
        return following.logs(self.job_id, self._store, task, self.cluster)[1]

    def cancel(self) -> None:
        """Ask the scheduler to cancel the job."""
        following.cancel([self.job_id], self._store, self.cluster)


def submit(spec: SpecLike, overrides: Mapping[str, Any] | None = None,
           dry_run: bool = False) -> Job | submitting.Submission:
    """Check, price and submit ``spec`` exactly as ``abcitrain submit`` does; a dry run
    returns the Submission that would be made (nothing written, submitted or charged)."""
    planned = plan(spec, overrides, write_training=not dry_run)
    if dry_run:
        return submitting.submit(planned, None, dry_run=True)
    store = JobStore()
    sub = submitting.submit(planned, store)
    assert sub.job_id is not None
    return Job(planned.profile.name, sub.job_id, planned.spec.name, sub, store)


def submit_chain(spec: Mapping[str, Any] | str | Path) -> list[Job]:
    """Submit a chain (a spec with ``stages:``): every stage checked and priced first,
    then each submitted waiting for the one before it. The stages' jobs, in order."""
    if isinstance(spec, Mapping):
        from ..batch.chain import parse_chain

        chain = parse_chain(spec)
    else:
        chain = chain_service.load_chain(Path(spec))
    store = JobStore()
    done = chain_service.submit_chain(chain, store)
    return [Job(p.profile.name, str(sb.job_id), stage.name, sb, store)
            for stage, p, sb in done.stages]


def follow(jobs: Sequence[Job], timeout_s: float | None = None) -> list[JobRecord]:
    """Follow several jobs until all have ended (or ``timeout_s`` passes), with one
    scheduler query per cluster per poll for all of them; their latest records."""
    if not jobs:
        return []
    store = jobs[0]._store
    return _follow([j.record() for j in jobs], store, timeout_s=timeout_s)
