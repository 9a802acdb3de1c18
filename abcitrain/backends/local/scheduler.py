"""The local cluster: abcitrain's own one-machine scheduler (``abcitrain.localsched``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from ...domain import ClusterProfile, JobSpec, JobState, JobStatus
from ...errors import Problem
from ..base import (
    Backend,
    JobVariables,
    Output,
    TaskEnd,
    map_state,
    task_failures,
    task_rows,
)
from ..options import OptionTable

STATES = {s.value: s for s in JobState if s is not JobState.UNKNOWN}
#: The options a #LOCAL line may carry, each with one value (abcitrain.localsched reads
#: them with argparse; a test keeps the two lists equal).
OPTIONS = ("--name", "--walltime", "--array", "--output", "--dependency", "--nodes", "--gpus",
           "--grace")


class LocalBackend(Backend):
    """Runs jobs on this machine as background processes."""

    name = "local"
    directive_prefix = "#LOCAL"
    template = "local.sh.j2"
    variables = JobVariables(job_id="LOCAL_JOB_ID", array_index="LOCAL_ARRAY_INDEX",
                             submit_dir="LOCAL_SUBMIT_DIR", node_files=("LOCAL_NODEFILE",),
                             detect=("LOCAL_JOB_ID",))
    # first: a job of the local scheduler started inside another scheduler's job inherits
    # that job's variables too, and the local scheduler's own are the more specific
    detect_order = 1
    options = OptionTable(
        long={"--name": "name", "--walltime": "walltime", "--array": "array",
              "--output": "output", "--dependency": "dependency", "--nodes": "nodes",
              "--gpus": "resource"},
        abbreviations=True)
    help_options = frozenset({"--help", "-h"})
    default_cluster = "local"
    runs_here = True
    explanations = (
        (r"bad #LOCAL directive", "the rendered script's #LOCAL lines were refused"),
        (r"this machine is one node", "the local cluster is one machine: set nodes: 1"),
        (r"is not a local job", "a dependency names a job the local scheduler never ran"),
        (r"has already ended", "the job had already ended"),
        (r"unknown job", "the local scheduler does not know this job id"),
    )

    def header_directives(self, spec: JobSpec, profile: object) -> list[str]:
        out = [f"--name {spec.name}", f"--walltime {spec.walltime_s}"]
        if spec.output:
            out.append(f"--output {spec.output}")
        if spec.array is not None:
            out.append(f"--array {spec.array}")
        if spec.depends_on:
            out.append(f"--dependency {spec.dependency}:{':'.join(spec.depends_on)}")
        return out

    def walltime_text(self, seconds: int) -> str:
        return str(seconds)

    def plan_problems(self, spec: JobSpec, profile: ClusterProfile,
                      directives: Sequence[str]) -> list[Problem]:
        found = super().plan_problems(spec, profile, directives)
        if spec.error:
            found.append(Problem("error", "the local scheduler writes stderr into the output "
                                 "file: leave error: out"))
        return found

    def directive_problems(self, directives: Sequence[str]) -> list[str]:
        found = []
        for d in directives:
            option, _, value = d.replace("=", " ", 1).partition(" ")
            if option not in OPTIONS:
                found.append(f"{d!r}: the local scheduler knows only "
                             f"{', '.join(OPTIONS)}")
            elif not value.strip() or " " in value.strip():
                found.append(f"{d!r}: {option} takes exactly one value")
            elif option in ("--nodes", "--gpus", "--grace") and not value.strip().isdigit():
                found.append(f"{d!r}: {option} takes a whole number")
        return found

    def submit_argv(self, script: str, extra_args: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", "abcitrain.localsched", "submit", *extra_args, script]

    def parse_submit(self, out: Output) -> str:
        text = out.stdout.strip()
        if not text.isdigit():
            raise ValueError(f"the local scheduler printed no job id: {out.stdout!r}")
        return text

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", "abcitrain.localsched", "stat", *job_ids]

    def submitted_argv(self) -> list[str] | None:
        # the spool keeps every job, ended ones too, with the script it came from
        return [sys.executable, "-m", "abcitrain.localsched", "submitted"]

    def parse_submitted(self, out: Output) -> dict[str, str]:
        found = {}
        for line in out.stdout.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("script") and row.get("job_id"):
                found[str(row["script"])] = str(row["job_id"])
        return found

    def parse_status(self, out: Output, job_ids: Sequence[str],
                     cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        result = {}
        for line in out.stdout.splitlines():
            row = json.loads(line)
            warn: list[str] = []
            state = map_state(STATES, str(row["state"]), warn)
            tasks = [TaskEnd(str(t["index"]), map_state(STATES, str(t["state"]), warn),
                             t.get("exit_code"))
                     for t in row.get("tasks") or () if t.get("index") not in (None, "None")]
            notes = [row.get("detail") or "", task_failures(tasks) if state.terminal else "",
                     *warn]
            result[row["job_id"]] = JobStatus(
                row["job_id"], state, str(row["state"]), exit_code=row.get("exit_code"),
                elapsed_s=row.get("elapsed"), detail="; ".join(n for n in notes if n),
                task_elapsed=tuple(row.get("task_elapsed") or ()),
                final_usage=state.terminal, tasks_seen=len(tasks), task_states=task_rows(tasks))
        return {k: val for k, val in result.items() if k in job_ids}

    def accounting_argvs(self, job_ids: Sequence[str]) -> list[list[str]]:
        return []     # the spool keeps final states; status already answered

    def parse_accounting(self, outs: Sequence[Output], job_ids: Sequence[str],
                         cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        return {}

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", "abcitrain.localsched", "cancel", *job_ids]
