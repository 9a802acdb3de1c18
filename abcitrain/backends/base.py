"""The backend contract: everything abcitrain knows about one scheduler. No I/O.

The submit algorithm is fixed in ``service``; a backend says how its scheduler spells
things: directive lines and the options that set the fields abcitrain owns, the
submit/status/accounting/cancel argv and how to read the answers, what a refusal means in
plain words, the variables it sets inside a job, how a running job requeues itself, how
its directives read back into a spec (``import``), what it cannot run (plan problems), and
its reservation commands. Core code asks the backend; it never compares a scheduler's name.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..domain import ClusterProfile, JobSpec, JobState, JobStatus
from ..errors import Problem
from ..util.durations import parse_duration
from .answers import Output as Output  # re-exported: the parsers' input
from .answers import explain_by
from .options import OPTION_WORD, OptionTable

if TYPE_CHECKING:
    from .reservations import ReservationBackend


@dataclass(frozen=True)
class JobVariables:
    """The environment variables a scheduler sets inside a job: what its template turns into
    abcitrain's own ``ABCITRAIN_*`` variables, and how a process knows whose job it is in."""

    job_id: str
    array_index: str
    submit_dir: str
    #: variables naming a file that lists the job's hosts (one per line or per rank)
    node_files: tuple[str, ...] = ()
    #: a variable holding the job's hosts as a compressed list (Slurm's ``gpu[01-03]``)
    host_list: str | None = None
    #: the node-local scratch folder (ABCI: the node's SSD)
    local_scratch: str | None = None
    #: set (non-empty) only inside this scheduler's jobs, all of them together
    detect: tuple[str, ...] = ()


@dataclass(frozen=True)
class Requeue:
    """How a running job goes back in the queue under its id: by running a command
    (``argv``), or by ending with a status the scheduler reschedules (``exit_status``);
    ``needs`` says what the command requires, for when it is refused."""

    argv: tuple[str, ...] = ()
    exit_status: int | None = None
    needs: str = ""


def log_file_name(stream: str, array: bool) -> str:
    """A job's log file as the schedulers name it by default, in abcitrain placeholders:
    NAME.oID for the output (``stream`` "output"), NAME.eID for the error, .INDEX added for
    an array's task."""
    return f"{{name}}.{stream[0]}{{job_id}}" + (".{array_index}" if array else "")


class Backend(ABC):
    """One scheduler's spelling. Subclasses fill the small hooks below; the registry
    (``abcitrain.backends``) finds them through the ``abcitrain.schedulers`` entry points."""

    name: str
    directive_prefix: str
    template: str
    #: Folders holding ``template`` besides abcitrain's own templates (a third party's).
    template_dirs: Sequence[str] = ()
    #: The variables the scheduler sets inside a job.
    variables: JobVariables
    #: Which options of the submit command set a field abcitrain owns (``options``).
    options: OptionTable = OptionTable()
    #: Options that make the submit command print help or its version and submit nothing.
    help_options: frozenset[str] = frozenset()
    #: Directives abcitrain writes for every job of this scheduler (the join option only
    #: while the spec gives no ``error:``): an imported script's copy of one is carried by
    #: the rendering, and a script without the join option had its stderr apart.
    written_anyway: tuple[str, ...] = ()
    #: The cluster profile an imported script of this scheduler is read for by default.
    default_cluster: str | None = None
    #: The scheduler's escapes in output paths and abcitrain's placeholders for them.
    output_escapes: tuple[tuple[str, str], ...] = ()
    #: False where the scheduler cannot put the job id into an output path (PBS).
    output_names_job_id: bool = True
    #: True where an output path that is a folder (``logs/``) gets the scheduler's own file
    #: name inside it (Grid Engine, PBS); where False it must name a file (Slurm fails a
    #: job whose --output is a folder before its first line: ExitCode 0:53, seen here).
    output_folder_allowed: bool = False
    #: Why a running job's output is not there yet, where the scheduler copies it at the
    #: end (PBS); None where the job writes it as it runs.
    output_appears_at_end: str | None = None
    #: Directives that make a job rerunnable, for a function job that requeues itself.
    rerunnable_directives: tuple[str, ...] = ()
    #: The ``points import --format`` that reads this scheduler's accounting records.
    accounting_format: str | None = None
    #: True when the scheduler starts a job in the user's home folder rather than the
    #: folder it was submitted from (PBS always; Grid Engine without -cwd): an imported
    #: script is started there too (workdir ~).
    job_starts_in_home: bool = False
    #: True when the scheduler runs jobs on the machine that submits them (abcitrain's own
    #: local scheduler): a new project then starts with the tiny model on the CPU.
    runs_here: bool = False
    #: The command that makes this scheduler's installed submit program say what it is
    #: (``mode: auto`` checks the one on PATH is this scheduler's); None: nothing to ask.
    identify_argv: tuple[str, ...] | None = None
    #: A pattern its answer matches (a sibling scheduler's same-named program does not).
    identity: str = r"$^"
    #: Detection order when a process asks whose job it runs in (lower first).
    detect_order: int = 100
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

    def holds_no_jobs(self, out: Output) -> bool:
        """Whether a failed ``submitted_argv`` means only that the user has no jobs (Grid
        Engine's ``qstat -j '*'`` exits 1 then) rather than that it could not answer."""
        return False

    #: What it means when neither the queue nor accounting knows a job any more.
    forgotten: str = "not in the queue and not (yet) in accounting"

    #: The directive that submits a job held (None: this scheduler cannot hold jobs).
    hold_directive: str | None = None

    def release_argv(self, job_ids: Sequence[str]) -> list[str]:
        """The command that releases held jobs."""
        raise NotImplementedError(f"the {self.name} scheduler cannot hold jobs")

    def default_output(self, spec: JobSpec) -> str:
        """The output path used when the spec gives none (abcitrain placeholders): NAME.oID,
        one file per task for an array."""
        return log_file_name("output", spec.array is not None)

    def name_problem(self, name: str) -> str | None:
        """Why the scheduler would refuse or misread job name ``name``; None when it takes
        it (abcitrain's own rule, letters, digits and _ . + -, is checked before)."""
        return None

    def output_problem(self, spec: JobSpec) -> str | None:
        """Why the scheduler cannot write the spec's output path; None when it can."""
        found = self.folder_problems(spec)
        return found[0].message if found else None

    def folder_problems(self, spec: JobSpec) -> list[Problem]:
        """An output or error path that is a folder (``logs/``), where this scheduler
        would open it as a file and fail the job before its first line."""
        if self.output_folder_allowed:
            return []
        return [Problem(field, f"{self.name} writes the job's {field} to a file, not into a "
                        f"folder: name the file, e.g. {path}{log_file_name(field, False)}")
                for field, path in (("output", spec.output), ("error", spec.error))
                if path and path.endswith("/")]

    def plan_problems(self, spec: JobSpec, profile: ClusterProfile,
                      directives: Sequence[str]) -> list[Problem]:
        """What this scheduler would do differently from what the spec asks (an output path
        it cannot write, an option it ignores), found when the job is planned."""
        return self.folder_problems(spec)

    # -- reading directives (owned fields, import) ---------------------------------------

    def list_names(self, option: str, resource_names: Sequence[str]) -> Mapping[str, str]:
        """The names a list option (``-l a=1,b=2``) sets, and the field each owns."""
        return self.options.lists.get(option, {})

    def owned_item(self, option: str, item: str, nodes: int | None
                   ) -> list[tuple[str, str]] | None:
        """The fields one item of a list option sets, where the table alone cannot say
        (None: ask the table)."""
        return None

    def owned_fields(self, directive: str, resource_names: Sequence[str] = (),
                     nodes: int | None = None) -> list[tuple[str, str]]:
        """The (field, how it was spelled) pairs a directive sets among the fields abcitrain
        owns, read the way this scheduler's submit command reads its options; [] when it
        sets none. ``resource_names`` are the profile's resource types (Grid Engine sites
        such as ABCI request them as ``-l rt_F=N``); ``nodes`` is the spec's node count."""
        table = self.options
        text = directive.strip()
        m = OPTION_WORD.match(text)
        if m is None:
            return []
        word, after = m.group(0), text[m.end():]
        candidates = [(word, after[1:].strip() if after[:1] in (" ", "=") else after.strip())]
        if not text.startswith("--") and len(text) > 2:
            # getopt reads "-lwalltime=1" as -l with "walltime=1" and "-t10" as -t 10;
            # whole-word options are tried split too, so no attached spelling slips through
            rest = text[2:]
            candidates.append((text[:2], rest[1:].strip() if rest[:1] == " " else rest))
        found: list[tuple[str, str]] = []
        for whole, (opt, value) in zip((True, False), candidates, strict=False):
            names = self.list_names(opt, resource_names) if opt in table.lists else {}
            for item in re.split(r"[,+]", value) if opt in table.lists else ():
                special = self.owned_item(opt, item, nodes)
                if special is not None:
                    found += special
                    continue
                name = item.split("=")[0].split(":")[0].strip()
                if name in names:
                    found.append((names[name], f"{opt} {name}"))
            if opt in table.short:
                found.append((table.short[opt], opt))
            if not whole:
                continue          # whole-word options (Grid Engine's -js, -jc) are not split
            if opt in table.long:
                found.append((table.long[opt], opt))
            elif table.abbreviations and opt.startswith("--") and len(opt) > 3:
                found += [(f, full) for full, f in table.long.items() if full.startswith(opt)]
        return list(dict.fromkeys(found))

    def prints_instead_of_submitting(self, directive: str) -> bool:
        """True when the directive makes the submit command print help or its version."""
        word = OPTION_WORD.match(directive.strip())
        return word is not None and word.group(0) in self.help_options

    def parse_walltime(self, text: str) -> int:
        """Seconds from a walltime as this scheduler's directives write it."""
        return parse_duration(text)

    def lift_variables(self, directive: str, data: dict[str, Any]) -> str:
        """An exported-variables directive (``-v A=1``) on import: what it says that the
        spec holds goes into ``data``; the rest of the directive is returned ("" if none)."""
        return directive

    def import_request(self, directive: str, value: str, items: Mapping[str, str],
                       profile: ClusterProfile, data: dict[str, Any]) -> bool:
        """Nodes and resource type from one directive into ``data``; False when this
        scheduler's spelling of them is not understood."""
        return False

    # -- inside a job -------------------------------------------------------------------

    def identifies(self, text: str) -> str | None:
        """The scheduler and version ``identify_argv`` printed, when it is this one's."""
        m = re.search(self.identity, text, re.M)
        return m.group(0).strip() if m else None

    def runs_job(self, env: Mapping[str, str]) -> bool:
        """True when ``env`` is the environment of one of this scheduler's jobs."""
        return bool(self.variables.detect) and all(env.get(v) for v in self.variables.detect)

    def requeue(self, env: Mapping[str, str]) -> Requeue | None:
        """How the running job (``env``: its environment) goes back in the queue; None
        where the scheduler cannot requeue a running job."""
        return None

    # -- reservations -------------------------------------------------------------------

    def reservations(self, commands: Mapping[str, Sequence[str]]
                     ) -> ReservationBackend | None:
        """The reader of this scheduler's reservation commands (the profile's ``commands``);
        None where it takes no advance reservations."""
        return None

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

    def output_file(self, output: str, name: str, job_id: str, task: int | None) -> str:
        """The file this scheduler writes for a job's recorded output path ``output``
        (abcitrain placeholders, ``{name}`` filled in: ``name``), for array task ``task``.
        A folder (``logs/``, as imported scripts give it) holds the scheduler's own name,
        NAME.oJOBID (.TASK for an array's task), as Grid Engine writes it."""
        if output.endswith("/"):
            output += log_file_name("output", task is not None).replace("{name}", name)
        return (output.replace("{job_id}", self.job_id_for_output(job_id))
                .replace("{array_index}", "" if task is None else str(task)))

    def explain(self, text: str) -> str | None:
        """A plain explanation of a scheduler message, when one is known."""
        return explain_by(self.explanations, text)


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
