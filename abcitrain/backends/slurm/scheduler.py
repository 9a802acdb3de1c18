"""Slurm: sbatch --parsable, one squeue for all jobs, sacct --parsable2 for finished ones."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...domain import ClusterProfile, JobSpec, JobState, JobStatus
from ...util.durations import format_slurm
from ..base import (
    Backend,
    JobVariables,
    Output,
    Requeue,
    TaskEnd,
    aggregate,
    first_failure_exit,
    map_state,
    task_counts,
    task_failures,
    task_rows,
)
from ..options import OptionTable

if TYPE_CHECKING:
    from ..reservations import ReservationBackend

#: sbatch(1)'s options that set a field abcitrain owns (getopt_long: abbreviations too)
OPTIONS = OptionTable(
    short={"-t": "walltime", "-N": "nodes", "-p": "resource", "-a": "array",
           "-d": "dependency", "-A": "group", "-o": "output", "-e": "output",
           "-J": "name", "-G": "resource", "-D": "workdir"},
    long={"--time": "walltime", "--nodes": "nodes", "--partition": "resource",
          "--array": "array", "--dependency": "dependency", "--reservation": "reservation",
          "--account": "group", "--output": "output", "--error": "output",
          "--job-name": "name", "--gpus": "resource", "--gres": "resource",
          "--gpus-per-node": "resource", "--chdir": "workdir"},
    abbreviations=True)

STATES = {
    "PENDING": JobState.PENDING, "CONFIGURING": JobState.PENDING,
    "REQUEUED": JobState.PENDING, "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.HELD, "REQUEUE_HOLD": JobState.HELD,
    "SUSPENDED": JobState.HELD, "STOPPED": JobState.HELD,
    "RUNNING": JobState.RUNNING, "COMPLETING": JobState.RUNNING, "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING, "STAGE_OUT": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED, "NODE_FAIL": JobState.FAILED, "BOOT_FAIL": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED, "SPECIAL_EXIT": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED, "REVOKED": JobState.CANCELLED,
    "PREEMPTED": JobState.CANCELLED,
    "TIMEOUT": JobState.TIMEOUT, "DEADLINE": JobState.TIMEOUT,
}




#: Reasons squeue gives for a pending job that waits on a hold, not on resources.
HELD_REASONS = frozenset(("JobHeldUser", "JobHeldAdmin"))


#: What the signal of a failed job's ExitCode 0:N means where it is Slurm's own, not a
#: signal sent to the job: 53 was seen live here when slurmd could not open the job's
#: output file ("Could not open stdout file", "IO setup failed"), before its first line.
SLURM_SIGNALS = {53: "Slurm could not open the job's output or error file (its folder is "
                     "missing or not writable where the job ran, or the path is a folder), "
                     "so the job never started and wrote no output"}


@dataclass(frozen=True)
class _AcctRow:
    index: str            # the array task index ("" for a plain job; "[4-9]" for unsplit)
    state: JobState
    raw: str
    exit_code: int | None
    elapsed: int | None
    ran: bool
    signal: int = 0       # ExitCode's second part: the signal that ended the batch step


def _signal_detail(rows: Sequence[_AcctRow]) -> str:
    """Why a job FAILED with exit status 0: sacct's ExitCode 0:N names the signal (or
    Slurm's own failure) that ended it; without this the report would read "exit 0"."""
    sig = next((r.signal for r in rows if r.state is JobState.FAILED and r.signal
                and not r.exit_code), 0)
    if not sig:
        return ""
    said = f"ended by signal {sig} (sacct ExitCode 0:{sig})"
    return f"{said}: {SLURM_SIGNALS[sig]}" if sig in SLURM_SIGNALS else said


class SlurmBackend(Backend):
    """Slurm's sbatch/squeue/sacct/scancel."""

    name = "slurm"
    directive_prefix = "#SBATCH"
    template = "slurm.sh.j2"
    # An array task's SLURM_JOB_ID is its own; the id sbatch printed is SLURM_ARRAY_JOB_ID.
    variables = JobVariables(job_id="SLURM_JOB_ID", array_index="SLURM_ARRAY_TASK_ID",
                             submit_dir="SLURM_SUBMIT_DIR", host_list="SLURM_JOB_NODELIST",
                             detect=("SLURM_JOB_ID",))
    detect_order = 20
    options = OPTIONS
    help_options = frozenset({"--help", "-h", "--usage", "--version", "-V"})
    default_cluster = "slurm"
    output_escapes = (("%A", "{job_id}"), ("%j", "{job_id}"), ("%a", "{array_index}"),
                      ("%x", "{name}"))
    accounting_format = "sacct"
    identify_argv = ("sbatch", "--version")
    identity = r"^slurm(-wlm)? \S+"
    explanations = (
        (r"Invalid account", "the account (group:) is not one you may charge; check "
         "`sacctmgr show assoc user=$USER`"),
        (r"Requested node configuration is not available", "no node of that partition has "
         "that many GPUs/CPUs/memory: lower the request or pick another resource type"),
        (r"invalid partition", "the partition does not exist: fix the profile's request"),
        (r"Requested time limit is invalid", "the walltime is over the partition's MaxTime"),
        (r"QOSMax|AssocMax|violates accounting/QOS policy", "the job is over a QOS or "
         "account limit (nodes, GPUs, walltime or job count)"),
        (r"[Rr]eservation.*(invalid|not found|access denied)|Requested reservation",
         "the reservation does not exist or you may not use it"),
        (r"Batch job submission failed", "Slurm refused the job; its words are above"),
    )

    def header_directives(self, spec: JobSpec, profile: object) -> list[str]:
        out = [f"--job-name={spec.name}", f"--time={self.walltime_text(spec.walltime_s)}"]
        output = spec.output or self.default_output(spec)
        out.append(f"--output={self._output(output, spec)}")
        if spec.error:
            out.append(f"--error={self._output(spec.error, spec)}")
        if spec.array is not None:
            limit = f"%{spec.max_concurrent}" if spec.max_concurrent else ""
            out.append(f"--array={spec.array}{limit}")
        if spec.depends_on:
            out.append(f"--dependency={spec.dependency}:{':'.join(spec.depends_on)}")
            if spec.chain is not None and spec.dependency == "afterok":
                # a failed stage cancels the rest instead of leaving them pending forever
                # (DependencyNeverSatisfied)
                out.append("--kill-on-invalid-dep=yes")
        return out

    def rank_layout(self, directives: Sequence[str], spec: JobSpec) -> list[str]:
        out = list(directives)
        if spec.ranks_per_node:
            out.append(f"--ntasks-per-node={spec.ranks_per_node}")
        if spec.threads_per_rank:
            out.append(f"--cpus-per-task={spec.threads_per_rank}")
        return out

    @staticmethod
    def _output(path: str, spec: JobSpec) -> str:
        job = "%A" if spec.array is not None else "%j"
        return path.replace("{job_id}", job).replace("{array_index}", "%a") \
            .replace("{name}", "%x")

    def walltime_text(self, seconds: int) -> str:
        return format_slurm(seconds)

    def parse_walltime(self, text: str) -> int:
        return slurm_time(text)

    def import_request(self, directive: str, value: str, items: Mapping[str, str],
                       profile: ClusterProfile, data: dict[str, Any]) -> bool:
        if directive.startswith(("-N", "--nodes")):
            first = value.split("-")[0]
            data["nodes"] = int(first) if first.isdigit() else 1
            return True
        if directive.startswith(("-p", "--partition")):
            for tname, t in profile.resource_types.items():
                if tname == value or any(r == f"--partition={value}"
                                         for r in (t.request or profile.request)):
                    data["resource"] = tname
                    return True
            return False
        # a GPU request (--gres=gpu:8): the one a resource type's own request writes
        written = directive.replace(" ", "=", 1) if directive.startswith("--") else directive
        matching = [tname for tname, t in profile.resource_types.items()
                    if any(_filled(r, tname, t.gpus) == written
                           for r in (t.request or profile.request))]
        if data.get("resource") in matching or (len(matching) == 1 and "resource" not in data):
            data.setdefault("resource", matching[0] if matching else data.get("resource"))
            return True
        return False

    def requeue(self, env: Mapping[str, str]) -> Requeue | None:
        # a task's own SLURM_JOB_ID
        return Requeue(argv=("scontrol", "requeue", env["SLURM_JOB_ID"]))

    def reservations(self, commands: Mapping[str, Sequence[str]]) -> ReservationBackend:
        from .reservations import SlurmReservations

        return SlurmReservations(commands)

    def submit_argv(self, script: str, extra_args: Sequence[str]) -> list[str]:
        return ["sbatch", "--parsable", *extra_args, script]

    def parse_submit(self, out: Output) -> str:
        first = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        job_id = first.split(";")[0]
        if not job_id.isdigit():
            raise ValueError(f"sbatch printed no job id: {out.stdout!r}")
        return job_id

    def submitted_argv(self) -> list[str] | None:
        # --states=all: a job that already ended stays listed while slurmctld remembers it
        # (MinJobAge, 300 s by default); %o is the command, sbatch's script as given
        return ["squeue", "--me", "--states=all", "--noheader", "--format=%i|%o"]

    def parse_submitted(self, out: Output) -> dict[str, str]:
        found = {}
        for line in out.stdout.splitlines():
            job, _, command = line.strip().partition("|")
            if job and command:
                found[command.strip()] = job.split("_")[0]      # an array: its job id
        return found

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        # -r: one line per array task; --states=all: also jobs that ended within MinJobAge.
        return ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%r",
                f"--jobs={','.join(job_ids)}"]

    def parse_status(self, out: Output, job_ids: Sequence[str],
                     cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        warn: list[str] = []
        tasks: dict[str, list[tuple[JobState, str, str]]] = {}
        each: dict[str, list[TaskEnd]] = {}
        for line in out.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) < 2:
                continue
            base, _, index = parts[0].partition("_")
            raw = parts[1]
            reason = parts[2] if len(parts) > 2 else ""
            state = map_state(STATES, raw, warn)
            if state is JobState.PENDING and reason in HELD_REASONS:
                state = JobState.HELD       # squeue says PENDING; the reason says held
            tasks.setdefault(base, []).append((state, raw, reason))
            each.setdefault(base, []).append(TaskEnd(index, state))
        result = {}
        for job_id in job_ids:
            if job_id in tasks:
                states = [t[0] for t in tasks[job_id]]
                raws = sorted({t[1] for t in tasks[job_id]})
                reasons = sorted({t[2] for t in tasks[job_id] if t[2] not in ("", "None")})
                detail = "; ".join(filter(None, [task_counts(states), *reasons, *warn]))
                result[job_id] = JobStatus(job_id, aggregate(states), ",".join(raws),
                                           detail=detail, task_states=task_rows(each[job_id]))
        return result

    def accounting_argvs(self, job_ids: Sequence[str]) -> list[list[str]]:
        # AllocNodes tells a job that ran 0 s (charged the minimum) from one that never
        # started: 0 for a job cancelled while pending. Start is no help (Slurm sets it to
        # the cancel time), nor is AllocCPUS (22.05 prints the requested count once the
        # scheduler has looked at the pending job)
        return [["sacct", "--noheader", "--parsable2", "--allocations", "--duplicates",
                 f"--jobs={','.join(job_ids)}",
                 "--format=JobID,State,ExitCode,ElapsedRaw,AllocNodes"]]

    def parse_accounting(self, outs: Sequence[Output], job_ids: Sequence[str],
                         cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        warn: list[str] = []
        rows: dict[str, list[_AcctRow]] = {}
        for out in outs:
            for line in out.stdout.splitlines():
                parts = line.strip().split("|")
                if len(parts) < 4:
                    continue
                base, _, index = parts[0].partition("_")
                raw = parts[1].split()[0] if parts[1] else ""   # "CANCELLED by 0"
                code, _, sig = parts[2].partition(":")
                nodes = parts[4] if len(parts) > 4 else None
                elapsed = int(parts[3]) if parts[3].isdigit() else None
                ran = nodes not in ("0", "") if nodes is not None else bool(elapsed)
                rows.setdefault(base, []).append(_AcctRow(
                    index, map_state(STATES, raw, warn), raw,
                    int(code) if code.isdigit() else None, elapsed, ran,
                    int(sig) if sig.isdigit() else 0))
        result = {}
        for job_id in job_ids:
            if job_id not in rows:
                continue
            got = rows[job_id]
            codes = [r.exit_code for r in got if r.exit_code is not None]
            walls = [r.elapsed for r in got if r.elapsed is not None]
            state = aggregate([r.state for r in got])
            tasks = [TaskEnd(r.index, r.state, r.exit_code) for r in got if r.index]
            detail = "; ".join(filter(None, [task_failures(tasks) if state.terminal else "",
                                             _signal_detail(got), *warn]))
            result[job_id] = JobStatus(
                job_id, state, ",".join(sorted({r.raw for r in got})),
                exit_code=(first_failure_exit(tasks) if tasks else max(codes)) if codes
                else None,
                elapsed_s=max(walls) if walls else None, detail=detail,
                task_elapsed=tuple(float(r.elapsed or 0) for r in got if r.ran),
                final_usage=all(r.state.terminal for r in got),
                tasks_seen=sum(1 for t in tasks if t.index.isdigit()),
                task_states=task_rows(tasks))
        return result

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["scancel", *job_ids]

    hold_directive = "--hold"

    def release_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["scontrol", "release", *job_ids]


def slurm_time(text: str) -> int:
    """Seconds from sbatch's --time forms: minutes, minutes:seconds, hours:minutes:seconds,
    days-hours, days-hours:minutes, days-hours:minutes:seconds (a bare number is MINUTES)."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise ValueError(text)
    days, a, b, c = m.groups()
    if days is not None:                          # days-hours[:minutes[:seconds]]
        seconds = int(days) * 86400 + int(a) * 3600 + int(b or 0) * 60 + int(c or 0)
    elif c is not None:
        seconds = int(a) * 3600 + int(b) * 60 + int(c)
    elif b is not None:
        seconds = int(a) * 60 + int(b)             # minutes:seconds
    else:
        seconds = int(a) * 60
    if seconds <= 0:
        raise ValueError(text)
    return seconds


def _filled(template: str, type_name: str, gpus: int) -> str:
    """A profile request template as written for one resource type (nodes left as is)."""
    return template.replace("{type}", type_name).replace("{gpus}", str(gpus))
