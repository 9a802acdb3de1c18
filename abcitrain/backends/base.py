"""The backend contract: build argv lists and parse text. Backends do no I/O.

The submit algorithm is fixed in ``service``; a backend only says how its scheduler spells
things: directive lines, the submit/status/accounting/cancel argv, how to read the answers,
and what a refusal means in plain words.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..domain import ClusterProfile, JobSpec, JobState, JobStatus


@dataclass(frozen=True)
class Output:
    """What one command printed, for a parser."""

    stdout: str
    stderr: str
    returncode: int


class Backend(ABC):
    """One scheduler's spelling. Subclasses fill the small hooks below."""

    name: str
    directive_prefix: str
    template: str
    #: Patterns of scheduler messages and what they mean, checked in order.
    explanations: Sequence[tuple[str, str]] = ()
    #: True when the status query answers for finished jobs too (PBS's ``qstat -x``): an id
    #: missing from its answer was dropped, and is worth asking for again.
    status_covers_finished: bool = False
    #: Where accounting keeps no record of a job deleted before it started (Grid Engine):
    #: seconds after a cancel past which a missing record means the job never ran. Records
    #: of jobs that did run arrive within the flush interval (Grid Engine: 15 s by default).
    unstarted_unaccounted_after_s: float | None = None

    @abstractmethod
    def header_directives(self, spec: JobSpec, profile: ClusterProfile) -> list[str]:
        """Directives abcitrain always writes: name, walltime, output, array, dependencies."""

    @abstractmethod
    def walltime_text(self, seconds: int) -> str:
        """The walltime as this scheduler writes it."""

    @abstractmethod
    def submit_argv(self, script: str, extra_args: Sequence[str]) -> list[str]:
        """The command that submits ``script`` (a path on the submit host)."""

    @abstractmethod
    def parse_submit(self, out: Output) -> str:
        """The job id from a successful submission's output."""

    @abstractmethod
    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        """ONE command that reports every job in ``job_ids`` still known to the queue."""

    @abstractmethod
    def parse_status(self, out: Output, job_ids: Sequence[str],
                     cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        """The jobs the queue still knows; the missing ones are left out, never 'done'."""

    @abstractmethod
    def accounting_argvs(self, job_ids: Sequence[str]) -> list[list[str]]:
        """Commands that ask accounting about jobs that left the queue."""

    @abstractmethod
    def parse_accounting(self, outs: Sequence[Output], job_ids: Sequence[str],
                         cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        """Final states from accounting; jobs it does not know are left out."""

    @abstractmethod
    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        """The command that cancels ``job_ids``."""

    def submitted_argv(self) -> list[str] | None:
        """ONE command listing my jobs (finished ones too, while the scheduler remembers
        them) with the script each was submitted from; None where there is none. A lost
        connection during a submission is resolved with it: the script path is unique to
        each submission, so a job carrying it IS that submission."""
        return None

    def parse_submitted(self, out: Output) -> dict[str, str]:
        """Script path -> job id, from ``submitted_argv``'s answer."""
        return {}

    #: The directive that submits a job held (None: this scheduler cannot hold jobs).
    hold_directive: str | None = None

    def release_argv(self, job_ids: Sequence[str]) -> list[str]:
        """The command that releases held jobs."""
        raise NotImplementedError(f"the {self.name} scheduler cannot hold jobs")

    @abstractmethod
    def default_output(self, spec: JobSpec) -> str:
        """The output path the scheduler uses when none is given (abcitrain placeholders)."""

    def rank_layout(self, directives: Sequence[str], spec: JobSpec) -> list[str]:
        """The directives with the spec's ranks per node and threads per rank in this
        scheduler's spelling (none where it has no such request: the launcher reads the
        job's environment)."""
        return list(directives)

    def combine(self, directives: Sequence[str]) -> list[str]:
        """The final directive lines: where the scheduler REPLACES an option on each
        occurrence instead of adding to it, the backend merges them into one."""
        return list(directives)

    def directive_problems(self, directives: Sequence[str]) -> list[str]:
        """What the scheduler itself would refuse among ``directives`` (checked at plan
        time, so `check` and `submit` agree); [] where abcitrain cannot know."""
        return []

    def job_id_for_output(self, job_id: str) -> str:
        """The part of a job id the scheduler writes into output file names."""
        return job_id

    def explain(self, text: str) -> str | None:
        """A plain explanation of a scheduler message, when one is known."""
        return explain_by(self.explanations, text)


def explain_by(explanations: Sequence[tuple[str, str]], text: str) -> str | None:
    """The meaning of the first pattern in ``explanations`` that ``text`` matches."""
    for pattern, meaning in explanations:
        if re.search(pattern, text):
            return meaning
    return None


def aggregate(states: Sequence[JobState]) -> JobState:
    """One state for an array job from its tasks' states."""
    for candidate in (JobState.RUNNING, JobState.PENDING, JobState.HELD, JobState.UNKNOWN,
                      JobState.FAILED, JobState.TIMEOUT, JobState.CANCELLED):
        if candidate in states:
            return candidate
    return JobState.COMPLETED


@dataclass(frozen=True)
class TaskEnd:
    """One array task as the scheduler recorded it."""

    index: str
    state: JobState
    exit_code: int | None = None


def task_rows(tasks: Sequence[TaskEnd]) -> tuple[tuple[str, str, int | None], ...]:
    """JobStatus.task_states for ``tasks``: (index, state, exit code), in index order."""
    ordered = sorted(tasks, key=lambda t: (int(t.index) if t.index.isdigit() else 1 << 62,
                                           t.index))
    return tuple((t.index, t.state.value, t.exit_code) for t in ordered if t.index)


def task_failures(tasks: Sequence[TaskEnd]) -> str:
    """Which tasks of an array did not complete, in words ("" when all did or none ended):
    a failed task makes the array FAILED, and the user needs to know which one."""
    bad = [t for t in tasks if t.state.terminal and t.state is not JobState.COMPLETED]
    if not bad:
        return ""
    ordered = sorted(bad, key=lambda t: (int(t.index) if t.index.isdigit() else 0, t.index))
    shown = [f"{t.index} {t.state.value}" + (f" (exit {t.exit_code})"
                                              if t.exit_code not in (None, 0) else "")
             for t in ordered[:20]]
    more = f", and {len(ordered) - 20} more" if len(ordered) > 20 else ""
    return (f"{len(bad)} of {len(tasks)} tasks did not complete: task "
            f"{', '.join(shown)}{more}")


def task_counts(states: Sequence[JobState]) -> str:
    """How many tasks of an array are in each state ("tasks: 2 RUNNING, 8 PENDING"), for
    an array still under way; "" for a single task."""
    if len(states) < 2:
        return ""
    counts: dict[str, int] = {}
    for st in states:
        counts[st.value] = counts.get(st.value, 0) + 1
    return "tasks: " + ", ".join(f"{n} {name}" for name, n in counts.items())


def first_failure_exit(tasks: Sequence[TaskEnd]) -> int | None:
    """An array's exit code: the lowest-index failing task's non-zero exit code, 0 when
    every task exited 0, None when no task reported one."""
    codes = sorted(((int(t.index) if t.index.isdigit() else 0), t.exit_code) for t in tasks
                   if t.exit_code is not None)
    if not codes:
        return None
    return next((code for _, code in codes if code != 0), 0)


def map_state(table: Mapping[str, JobState], raw: str, warn: list[str]) -> JobState:
    """Look a raw state up in a backend's table; an unknown one is UNKNOWN, with a warning."""
    state = table.get(raw)
    if state is None:
        warn.append(f"unknown scheduler state {raw!r}; reported as UNKNOWN")
        return JobState.UNKNOWN
    return state


def hms_seconds(text: str) -> int | None:
    """Seconds from ``[D-]HH:MM:SS`` (also MM:SS); None when it does not parse."""
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)(?:\.\d+)?", text.strip())
    if not m:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds
