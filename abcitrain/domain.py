"""The domain model: frozen dataclasses with no I/O.

``JobSpec`` is what a team writes once; ``ClusterProfile`` and ``ResourceType`` are the
cluster data (limits, resource types, site options) that every check and render reads.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

SERVICES = ("on-demand", "spot", "reserved")
DEPENDENCY_KINDS = ("afterok", "afterany")
#: The launchers ``abcitrain launch`` can start ranks with (a profile's ``launcher.kind``).
LAUNCHER_KINDS = ("torchrun", "deepspeed", "mpirun")
#: How each launcher kind reaches other nodes; the first is the default.
LAUNCHER_MULTINODE = {"torchrun": ("ssh", "srun"), "deepspeed": ("openmpi", "pdsh"),
                      "mpirun": ("mpirun",)}


@dataclass(frozen=True)
class ServiceLimits:
    """Per-job limits of one service (on-demand, spot, reserved) for one resource type."""

    max_nodes: int | None = None
    max_walltime_s: int | None = None
    max_node_hours: Decimal | None = None


@dataclass(frozen=True)
class ResourceType:
    """A resource type (ABCI's rt_HF, a Slurm partition's node, the local machine)."""

    name: str
    description: str
    exclusive: bool
    cpus: int
    gpus: int
    memory_gb: float
    gpu_model: str | None = None
    gpu_memory_gb: float | None = None
    limits: Mapping[str, ServiceLimits] = field(default_factory=dict)
    request: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ClusterProfile:
    """One cluster's data: scheduler, site options, limits and resource types."""

    name: str
    description: str
    scheduler: str
    services: tuple[str, ...]
    default_service: str
    resource_types: Mapping[str, ResourceType]
    group_required: bool
    group_directives: tuple[str, ...]
    group_submit_args: tuple[str, ...]
    request: tuple[str, ...]
    reservation_request: tuple[str, ...]
    reservation_pattern: str
    reservation_replaces_request: bool
    job_id_pattern: str
    module_init: str | None
    array_max_tasks: int | None
    login: Mapping[str, Any]
    source: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class ArrayRange:
    """An array job's task indices: start..end inclusive, every ``step``."""

    start: int
    end: int
    step: int = 1

    @property
    def count(self) -> int:
        """Number of tasks in the array."""
        return (self.end - self.start) // self.step + 1

    @classmethod
    def parse(cls, text: str) -> ArrayRange:
        """Read ``str(ArrayRange)`` back ("1-10" or "1-10:2")."""
        span, _, step = text.partition(":")
        start, _, end = span.partition("-")
        return cls(int(start), int(end), int(step or 1))

    def indices(self) -> range:
        """The task indices, in order."""
        return range(self.start, self.end + 1, self.step)

    def __str__(self) -> str:
        base = f"{self.start}-{self.end}"
        return base if self.step == 1 else f"{base}:{self.step}"


@dataclass(frozen=True)
class JobSpec:
    """A batch job, described once for every scheduler. Build it with ``spec.parse_spec``."""

    name: str
    cluster: str
    resource: str
    command: tuple[str, ...]
    walltime_s: int
    nodes: int = 1
    group: str | None = None
    service: str | None = None
    reservation: str | None = None
    modules: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    array: ArrayRange | None = None
    depends_on: tuple[str, ...] = ()
    dependency: str = "afterok"
    output: str | None = None
    workdir: str | None = None
    extra_directives: tuple[str, ...] = ()
    drop_directives: tuple[str, ...] = ()
    #: A training job's ``train:`` section (abcitrain.train.config); ``nodes`` 0 = auto.
    train: Mapping[str, Any] | None = None
    #: The spec file this came from (absolute), for jobs that resubmit themselves.
    source: str | None = None
    #: Submit held: the job waits until released.
    hold: bool = False
    #: MPI layout: ranks on each node, threads per rank (None: the scheduler's default).
    ranks_per_node: int | None = None
    threads_per_rank: int | None = None
    #: Steps before the command (batch.spec's ``setup``): module_use, module_purge,
    #: activate, conda, ulimit, run.
    setup: Mapping[str, Any] | None = None
    #: A sweep (batch.sweep): one mapping of parameter to value per array task, in task
    #: order (task i is ``sweep[i - 1]``); ``array`` is then 1-len(sweep).
    sweep: tuple[Mapping[str, Any], ...] = ()
    #: At most this many array tasks run at once (None: as many as the scheduler starts).
    max_concurrent: int | None = None
    #: Set on each stage of a chain (batch.chain) when it is submitted.
    chain: ChainStep | None = None
    #: The image the command runs in (batch.image): image, binds, pattern.
    container: Mapping[str, Any] | None = None
    #: The job's body as shell text, run verbatim after abcitrain's prologue (the
    #: alternative to ``command``: exactly one of the two).
    script: str | None = None
    #: Where stderr goes, apart from the output (None: joined into the output file).
    error: str | None = None


@dataclass(frozen=True)
class ChainStep:
    """A job's place in a chain of stages (batch.chain): which chain, which stage, and the
    marker files that carry "the stage before succeeded" from job to job on any scheduler."""

    chain: str
    stage: str
    index: int
    count: int
    #: The marker the previous stage writes when it succeeds; None for the first stage or an
    #: ``afterany`` stage (it runs whatever the previous stage did).
    requires: str | None
    #: The marker this stage writes when its command succeeds.
    done: str


class JobState(enum.Enum):
    """A job's state, the same for every scheduler (each backend maps to it through one table)."""

    PENDING = "PENDING"
    HELD = "HELD"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        """True once the job can no longer change state."""
        return self in _TERMINAL


_TERMINAL = {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT}


@dataclass(frozen=True)
class JobStatus:
    """What a backend learnt about one job from the scheduler."""

    job_id: str
    state: JobState
    raw_state: str
    exit_code: int | None = None
    elapsed_s: int | None = None
    detail: str = ""
    #: Seconds each array task (or the one job) ran, for charging. A task that started is
    #: listed even when it ran 0 s (it is charged the site's minimum); one that never
    #: started (deleted while queued) is left out.
    task_elapsed: tuple[float, ...] = ()
    #: True when ``task_elapsed`` is the scheduler's final word (its accounting record, or
    #: PBS's job history): the job can be settled in the ledger, at zero if nothing ran.
    final_usage: bool = False
    #: How many array tasks the answer covers (0 for a plain job).
    tasks_seen: int = 0
    #: Each array task the answer names: (index, state, exit code), in index order. An index
    #: may be a range of tasks still waiting together ("[5-20]", Slurm's unsplit tasks).
    task_states: tuple[tuple[str, str, int | None], ...] = ()
