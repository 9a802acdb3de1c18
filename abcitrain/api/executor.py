"""Python functions as jobs on any abcitrain cluster, through submitit's own protocol.

``AbcitrainExecutor`` is a submitit executor (its plugin API: see pyproject's
``[project.entry-points.submitit]``)::

    ex = AbcitrainExecutor("runs/fn", cluster="abci3")          # or "local", "slurm", ...
    ex.update_parameters(resource="rt_HG", walltime="1:00:00", group="gaa50000")
    job = ex.submit(train, lr=3e-4)                  # one job
    jobs = ex.map_array(train, [1e-4, 3e-4, 1e-3])   # ONE array job, a task per value
    job.result()                                     # the value, or the job's exception

    submitit.AutoExecutor("runs/fn", cluster="abcitrain", abcitrain_cluster="abci3")

Functions and results travel as submitit's pickles in ``folder`` (which the cluster's nodes
must see, as with submitit on Slurm). The job itself is an abcitrain job: checked against the
cluster's limits, priced, guarded by the budget, recorded in the ledger and the job store, and
followed by the shared poller (one scheduler query per poll for all jobs). Inside the job,
``abcitrain.api.runner`` runs submitit's ``process_job`` with this module's job environment,
which requeues by the scheduler's own command when a checkpointable function is stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import typing as tp
import uuid
from pathlib import Path

from submitit.core import core, utils
from submitit.core.job_environment import JobEnvironment

from ..backends import Backend, backend_running, get_backend
from ..backends.base import Requeue
from ..batch.render import plan_job
from ..batch.spec import parse_spec
from ..batch.store import JobRecord, JobStore
from ..domain import ClusterProfile, JobState
from ..errors import InputError, Problem, TransportError
from ..profiles import load_profile
from ..service import following, submitting
from ..service.common import is_remote, transport_for
from ..service.poll import poll_once

#: submitit's states for abcitrain's (submitit's Job.done() treats the first five as running)
SUBMITIT_STATE = {
    JobState.PENDING: "PENDING", JobState.HELD: "PENDING", JobState.RUNNING: "RUNNING",
    JobState.UNKNOWN: "UNKNOWN", JobState.COMPLETED: "COMPLETED", JobState.FAILED: "FAILED",
    JobState.CANCELLED: "CANCELLED", JobState.TIMEOUT: "TIMEOUT",
}
FINISHED_STATES = frozenset(SUBMITIT_STATE[s] for s in JobState if s.terminal)
#: The spec keys ``update_parameters`` accepts (besides submitit's generic ones).
SPEC_KEYS = frozenset((
    "resource", "walltime", "group", "service", "reservation", "modules", "env", "setup",
    "max_concurrent", "extra_directives", "drop_directives", "depends_on", "dependency",
    "hold", "name", "python"))


class AbcitrainInfoWatcher(core.InfoWatcher):
    """Job states for every executor's jobs through the shared poller: one scheduler query
    per cluster per poll for all of them (and none when another process asked within the
    cluster's minimum interval)."""

    def __init__(self, delay_s: int = 60) -> None:
        super().__init__(delay_s)
        self.clusters: dict[str, str] = {}      # submitit job id -> abcitrain cluster

    def _make_command(self) -> list[str] | None:
        return None                              # update() asks through abcitrain instead

    def register_job(self, job_id: str) -> None:
        """Follow a job just submitted. The submission has just told us it is queued, so
        the first question to the scheduler waits for submitit's back-off (2 s, then 4, 8,
        ... up to the minute) instead of going out at once. Asking at once only learnt
        "PENDING" and cost a scheduler query: 0.15 s on the local cluster, before the first
        look for a result (bench/function_job.py)."""
        super().register_job(job_id)
        self._last_status_check = time.time()
        self._info_dict.setdefault(job_id, {"State": "PENDING", "Detail": ""})

    def get_state(self, job_id: str, mode: str = "standard") -> str:
        info = self.get_info(job_id, mode=mode)
        return info.get("State") or "UNKNOWN"

    def update(self) -> None:
        store = JobStore.existing()
        wanted = [j for j in self._registered - self._finished if j in self.clusters]
        if store is None or not wanted:
            return
        records: dict[tuple[str, str], JobRecord] = {}
        for job_id in wanted:
            key = (self.clusters[job_id], _base_id(job_id))
            rec = records.get(key) or store.get(*key)
            if rec is not None:
                records[key] = rec
        self._num_calls += 1
        fresh = {(r.cluster, r.job_id): r for r in poll_once(list(records.values()), store)}
        for job_id in wanted:
            rec = fresh.get((self.clusters[job_id], _base_id(job_id)))
            if rec is not None:
                state = JobState(_task_state(rec, job_id))
                self._info_dict[job_id] = {"State": SUBMITIT_STATE[state],
                                           "Detail": rec.detail}
                if state.terminal:
                    self._finished.add(job_id)
        self._last_status_check = time.time()


def _task_state(record: JobRecord, job_id: str) -> str:
    """An array task's own state where the scheduler named it, else its array's."""
    base = _base_id(job_id)
    index = job_id[len(base) + 1:] if job_id != base else ""
    return next((state for i, state, _ in record.tasks if index and i == index),
                record.state)


def _base_id(job_id: str) -> str:
    """The scheduler's id of a submitit job id ("123_4", an array's task 4, is job 123)."""
    base, sep, index = job_id.rpartition("_")
    return base if sep and index.isdigit() else job_id


class AbcitrainJob(core.Job[tp.Any]):
    """A submitted function: ``result()``, ``exception()``, ``done()``, ``stdout()`` as
    submitit's, its state from the shared poller. On a cluster reached over SSH the job's
    result and logs are fetched from the login node's copy of the folder."""

    watcher = AbcitrainInfoWatcher()
    #: Seconds between two looks for a remote job's result while it runs.
    FETCH_EVERY_S = 5.0

    def __init__(self, folder: str | Path, job_id: str, tasks: tp.Sequence[int] = (0,),
                 cluster: str = "local", project_dir: str | None = None) -> None:
        self.cluster = cluster
        self.project_dir = project_dir
        self._fetched_at = 0.0
        self.watcher.clusters[job_id] = cluster
        super().__init__(folder, job_id, tasks)

    def _fetch(self) -> None:
        """Copy the job's result and logs from the login node (a remote cluster only)."""
        if self.project_dir is None:
            return
        tr = transport_for(self.cluster, self.project_dir)
        if not is_remote(tr):
            return
        self._fetched_at = time.time()
        for path in (self.paths.result_pickle, self.paths.stdout, self.paths.stderr):
            if path.exists() and path == self.paths.result_pickle:
                continue
            try:
                data = tr.read_bytes(str(path))     # type: ignore[attr-defined]
            except TransportError:
                continue                              # not written (yet)
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_bytes(data)
            tmp.replace(path)

    def done(self, force_check: bool = False) -> bool:
        if self.project_dir is not None and not self.paths.result_pickle.exists() and (
                force_check or time.time() - self._fetched_at > self.FETCH_EVERY_S):
            self._fetch()
        return super().done(force_check)

    def _get_outcome_and_result(self) -> tuple[str, tp.Any]:
        if self.project_dir is not None and not self.paths.result_pickle.exists():
            self._fetch()
        return super()._get_outcome_and_result()

    @property
    def state(self) -> str:
        """The job's state. Once its result is there, a cached "RUNNING" is stale: ask again
        (the shared poller, within the cluster's minimum interval) instead of waiting out
        the watcher's minute."""
        state = self.watcher.get_state(self.job_id, mode="standard")
        if state not in FINISHED_STATES and self.paths.result_pickle.exists():
            state = self.watcher.get_state(self.job_id, mode="force")
        return state

    def cancel(self, check: bool = True) -> None:
        """Cancel the job (a task of an array: the whole array, abcitrain's unit)."""
        store = JobStore.existing()
        if store is None:
            raise InputError("no such job", [Problem(self.job_id, "the job store is gone")])
        following.cancel([_base_id(self.job_id)], store, self.cluster)


class AbcitrainExecutor(core.PicklingExecutor):
    """Submit Python functions to an abcitrain cluster (``cluster``: a profile name)."""

    job_class = AbcitrainJob

    def __init__(self, folder: str | Path, cluster: str | None = None,
                 max_num_timeout: int = 3) -> None:
        super().__init__(folder, max_num_timeout=max_num_timeout)
        self.cluster = cluster or os.environ.get("ABCITRAIN_CLUSTER") or "local"
        self.profile: ClusterProfile = load_profile(self.cluster)
        self.parameters = {"walltime": "1:00:00", "timeout_min": 60}
        self._generic: dict[str, tp.Any] = {}
        self._pythons_checked: set[str] = set()

    @classmethod
    def name(cls) -> str:
        return "abcitrain"

    @classmethod
    def affinity(cls) -> int:
        # never chosen unasked: cluster="abcitrain" (or this class) selects it
        return 0

    @classmethod
    def _valid_parameters(cls) -> set[str]:
        return set(SPEC_KEYS) | {"cluster", "timeout_min", "nodes", "mem_gb", "cpus_per_task",
                                 "gpus_per_node", "tasks_per_node", "stderr_to_stdout"}

    def _internal_update_parameters(self, **kwargs: tp.Any) -> None:
        unknown = sorted(set(kwargs) - self._valid_parameters())
        if unknown:
            raise InputError("unknown executor parameters", [Problem(
                k, f"not one of: {', '.join(sorted(self._valid_parameters()))}")
                for k in unknown])
        if "cluster" in kwargs:
            self.cluster = str(kwargs.pop("cluster"))
            self.profile = load_profile(self.cluster)
        if "timeout_min" in kwargs:
            kwargs["walltime"] = int(kwargs["timeout_min"]) * 60
        if "walltime" in kwargs and "timeout_min" not in kwargs:
            from ..util.validation import duration

            kwargs["timeout_min"] = max(1, duration(kwargs["walltime"]) // 60)
        for key in ("mem_gb", "cpus_per_task", "gpus_per_node", "tasks_per_node", "nodes",
                    "stderr_to_stdout"):
            if key in kwargs:
                self._generic[key] = kwargs.pop(key)
        self.parameters.update(kwargs)

    def _resource(self) -> str:
        """The spec's resource, else the profile's first type that has what submitit's
        generic parameters ask for (GPUs, CPUs, memory per node)."""
        if "resource" in self.parameters:
            return str(self.parameters["resource"])
        need_gpus = int(self._generic.get("gpus_per_node") or 0)
        need_cpus = int(self._generic.get("cpus_per_task") or 0)
        need_mem = float(self._generic.get("mem_gb") or 0)
        for name, rtype in self.profile.resource_types.items():
            if (rtype.gpus >= need_gpus and rtype.cpus >= need_cpus
                    and rtype.memory_gb >= need_mem):
                return name
        raise InputError("no resource type fits", [Problem(
            "resource", f"none of {self.cluster}'s types has {need_gpus} GPUs, {need_cpus} "
            f"CPUs and {need_mem} GB; name one with resource=")])

    def _spec(self, count: int) -> dict[str, tp.Any]:
        if int(self._generic.get("nodes") or 1) != 1 or \
                int(self._generic.get("tasks_per_node") or 1) != 1:
            raise InputError("the function executor runs one process per job", [Problem(
                "nodes", "use nodes=1 and tasks_per_node=1; multi-node training is a job "
                "spec with a train: section (abcitrain submit)")])
        params = {k: v for k, v in self.parameters.items()
                  if k in SPEC_KEYS and k not in ("python", "name")}
        name = str(self.parameters.get("name") or "submitit")
        remote = is_remote(transport_for(self.cluster, str(Path.cwd())))
        # a login node has its own Python: the one on its PATH unless python= says
        python = str(self.parameters.get("python") or ("python3" if remote else sys.executable))
        if remote:
            self._check_login_python(python)
        folder = self._job_folder(remote)
        output = f"{folder}/{name}.o{{job_id}}"
        if count > 1:
            # one file per task; where the scheduler cannot name the job id in it (PBS),
            # the task index alone tells them apart
            output = (output + ".{array_index}" if self._backend().output_names_job_id
                      else f"{folder}/{name}.{{array_index}}.log")
        spec: dict[str, tp.Any] = {
            **params, "name": name, "cluster": self.cluster, "resource": self._resource(),
            "command": [python, "-u", "-m", "abcitrain.api.runner", folder],
            "env": {**(params.get("env") or {}), "SUBMITIT_EXECUTOR": "abcitrain"},
            "output": output}
        if count > 1:
            spec["array"] = f"1-{count}"
        rerunnable = self._backend().rerunnable_directives
        if rerunnable:
            # so that the requeue of submitit's checkpointing protocol is allowed
            spec["extra_directives"] = [*(params.get("extra_directives") or []), *rerunnable]
        return spec

    def _check_login_python(self, python: str) -> None:
        """On a login node reached over SSH, make sure its Python can run the job's side
        (abcitrain's runner, submitit's pickles) before anything is submitted: a job whose
        Python lacks them fails with its reason in a file on the cluster, and the caller
        only hears "no output". Asked once per executor and Python."""
        if python in self._pythons_checked:
            return
        tr = transport_for(self.cluster, str(Path.cwd()))
        probe = "import abcitrain.api.runner, submitit"
        result = tr.run([python, "-c", probe])
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            why = lines[-1] if lines else f"exit status {result.returncode}"
            raise InputError("the login node cannot run the function's job", [Problem(
                "python", f"{python} on {self.cluster}'s login node cannot import abcitrain "
                f"and submitit ({why}): install abcitrain there, or pass "
                "abcitrain_python=PATH naming a Python that has it")])
        self._pythons_checked.add(python)

    def _backend(self) -> Backend:
        return get_backend(self.profile.scheduler)

    def _job_folder(self, remote: bool) -> str:
        """The folder as the job names it: relative to the submit folder (the project) when
        inside it, so that the login node's copy of the project is meant there too."""
        try:
            return str(self.folder.relative_to(Path.cwd().resolve()))
        except ValueError:
            if remote:
                raise InputError("the executor's folder is outside the project", [Problem(
                    "folder", f"{self.folder} is not under {Path.cwd()}: on a cluster reached "
                    "over SSH only the project folder has a copy on the login node")]) from None
            return str(self.folder)

    def _internal_process_submissions(
            self, delayed_submissions: list[utils.DelayedSubmission]) -> list[core.Job[tp.Any]]:
        if not delayed_submissions:
            return []
        count = len(delayed_submissions)
        spec, profile = parse_spec(self._spec(count), "executor parameters")
        plan = plan_job(spec, profile)
        submitting.require_submittable(plan)
        self.folder.mkdir(parents=True, exist_ok=True)
        pickles = []
        for delayed in delayed_submissions:
            path = self.folder / f".{uuid.uuid4().hex}.abcitrain-pending.pkl"
            delayed.set_timeout(int(self.parameters["timeout_min"]), self.max_num_timeout)
            delayed.dump(path)
            pickles.append(path)
        try:
            sub = submitting.submit(plan, JobStore(), submit_dir=str(Path.cwd()))
        except BaseException:
            for path in pickles:
                path.unlink(missing_ok=True)
            raise
        assert sub.job_id is not None
        ids = ([sub.job_id] if count == 1 else
               [f"{sub.job_id}_{i}" for i in range(1, count + 1)])
        tr = transport_for(self.cluster, sub.submit_dir)
        remote = is_remote(tr)
        jobs: list[core.Job[tp.Any]] = []
        for job_id, path in zip(ids, pickles, strict=True):
            job = AbcitrainJob(self.folder, job_id, cluster=self.cluster,
                               project_dir=sub.submit_dir if remote else None)
            if remote:
                # the job waits up to a minute for its pickle (submitit's process_job)
                tr.write_bytes(str(job.paths.submitted_pickle),  # type: ignore[attr-defined]
                               path.read_bytes())
            job.paths.move_temporary_file(path, "submitted_pickle")
            jobs.append(job)
        return jobs

    # PicklingExecutor's single-command path is not used: submissions go through abcitrain
    def _num_tasks(self) -> int:
        return 1

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        raise NotImplementedError("abcitrain renders its own job scripts")

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        raise NotImplementedError("abcitrain submits through its own service")

    @staticmethod
    def _get_job_id_from_submission_command(string: bytes | str) -> str:
        raise NotImplementedError("abcitrain reads the scheduler's answer itself")


class AbcitrainJobEnvironment(JobEnvironment):
    """Inside an abcitrain job run by the function executor (SUBMITIT_EXECUTOR=abcitrain):
    the same variables on every scheduler (the job script's ABCITRAIN_*), and a requeue by
    the scheduler's own command, keeping the job id that the submitter follows."""

    _env: tp.ClassVar[dict[str, str]] = {
        "job_id": "ABCITRAIN_JOB_ID", "num_tasks": "ABCITRAIN_NUM_TASKS",
        "num_nodes": "ABCITRAIN_NNODES", "node": "ABCITRAIN_NODE_RANK",
        "global_rank": "ABCITRAIN_RANK", "local_rank": "ABCITRAIN_LOCAL_RANK",
        "array_task_id": "ABCITRAIN_ARRAY_INDEX",
    }

    @property
    def job_id(self) -> str:
        base = os.environ["ABCITRAIN_JOB_ID"]
        index = os.environ.get("ABCITRAIN_ARRAY_INDEX") or ""
        return f"{base}_{index}" if index else base

    @property
    def array_job_id(self) -> str | None:
        return os.environ["ABCITRAIN_JOB_ID"] if os.environ.get("ABCITRAIN_ARRAY_INDEX") \
            else None

    def _requeue(self, countdown: int) -> None:
        # from the scheduler's own variables: a job's environment may not carry the
        # profiles' search path (Grid Engine passes none of the submitter's environment)
        way = requeue_for(os.environ)
        if way.exit_status is not None:
            # the checkpoint is written already; the scheduler reschedules on this status
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(way.exit_status)
        proc = subprocess.run(list(way.argv), capture_output=True, text=True, timeout=60,
                              check=False)
        if proc.returncode != 0:
            said = (proc.stdout + proc.stderr).strip()
            raise RuntimeError(f"{' '.join(way.argv)} did not requeue the job: {said}"
                               + (f" ({way.needs})" if way.needs else ""))


def requeue_for(env: tp.Mapping[str, str]) -> Requeue:
    """How the running job (or array task) whose environment is ``env`` goes back in the
    queue under the same id, as its scheduler's backend says (``Backend.requeue``)."""
    backend = backend_running(env)
    way = backend.requeue(env) if backend is not None else None
    if way is None:
        where = f"the {backend.name} scheduler" if backend is not None else \
            "this process, which runs in no known scheduler's job,"
        raise InputError("cannot requeue", [Problem(
            "cluster", f"{where} cannot requeue a running job: the function stops at its "
            "checkpoint and the job ends without a result")])
    return way
