"""Grid Engine (Univa/Altair on ABCI 2.0, Son of Grid Engine elsewhere).

Site differences (ABCI's ``qsub -g``, ``-l rt_F=N`` against a stock site's parallel
environment) live in the cluster profile, so this one backend serves both.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...domain import ClusterProfile, JobSpec, JobState, JobStatus
from ...errors import Problem
from ...util.durations import format_hms
from ..base import (
    Backend,
    JobVariables,
    Output,
    Requeue,
    TaskEnd,
    aggregate,
    first_failure_exit,
    map_state,
    task_failures,
    task_rows,
)
from ..options import OptionTable

if TYPE_CHECKING:
    from ..reservations import ReservationBackend

# Every state code qstat(1) documents, as printed in the <state> element.
STATES = {
    "qw": JobState.PENDING, "Rq": JobState.PENDING, "Rqw": JobState.PENDING,
    "hqw": JobState.HELD, "hRwq": JobState.HELD, "hRqw": JobState.HELD,
    "r": JobState.RUNNING, "t": JobState.RUNNING, "Rr": JobState.RUNNING,
    "Rt": JobState.RUNNING,
    "s": JobState.HELD, "ts": JobState.HELD, "S": JobState.HELD, "tS": JobState.HELD,
    "T": JobState.HELD, "tT": JobState.HELD, "Rs": JobState.HELD, "Rts": JobState.HELD,
    "RS": JobState.HELD, "RtS": JobState.HELD, "RT": JobState.HELD, "RtT": JobState.HELD,
    # E: the job hit an error and waits for a person (qstat -j ID says why; qmod -cj clears)
    "Eqw": JobState.HELD, "Ehqw": JobState.HELD, "EhRqw": JobState.HELD,
    # d: deletion requested; the processes may still be running
    "dr": JobState.RUNNING, "dt": JobState.RUNNING, "dRr": JobState.RUNNING,
    "dRt": JobState.RUNNING, "ds": JobState.RUNNING, "dS": JobState.RUNNING,
    "dT": JobState.RUNNING, "dRs": JobState.RUNNING, "dRS": JobState.RUNNING,
    "dRT": JobState.RUNNING, "dqw": JobState.PENDING, "dhqw": JobState.PENDING,
}
# qacct's "failed" codes that say why a job ended (sge_job_schedd / execd sources).
FAILED_TIMEOUT = {"37"}      # qmaster enforced h_rt, h_cpu or h_vmem limit
FAILED_DELETED = {"100"}     # "assumedly after job": killed by a signal, as qdel does
#: sge_conf(5): a job or array task that exits with this status is rescheduled
GE_RESCHEDULE_EXIT = 99
#: qsub(1)'s options that set a field abcitrain owns: whole-word options, values after a
#: blank (the profile's resource types join -l's names: ABCI's -l rt_F=N)
OPTIONS = OptionTable(
    long={"-N": "name", "-t": "array", "-tc": "array", "-q": "resource", "-pe": "nodes",
          "-ar": "reservation", "-hold_jid": "dependency", "-hold_jid_ad": "dependency",
          "-A": "group", "-P": "group", "-g": "group", "-o": "output", "-e": "output",
          "-j": "output", "-wd": "workdir", "-cwd": "workdir"},
    lists={"-l": {"h_rt": "walltime", "s_rt": "walltime"}})
_SUBMIT_RE = re.compile(r"Your job(?:-array)? (\d+)")


class GridEngineBackend(Backend):
    """Grid Engine's qsub/qstat -xml/qacct/qdel."""

    name = "uge"
    directive_prefix = "#$"
    template = "uge.sh.j2"
    unstarted_unaccounted_after_s = 30.0     # twice the default accounting_flush_time
    # ABCI lists the hosts in $SGE_JOB_HOSTLIST; a stock Grid Engine in the PE's $PE_HOSTFILE
    variables = JobVariables(job_id="JOB_ID", array_index="SGE_TASK_ID",
                             submit_dir="SGE_O_WORKDIR",
                             node_files=("SGE_JOB_HOSTLIST", "PE_HOSTFILE"),
                             local_scratch="SGE_LOCALDIR", detect=("JOB_ID", "SGE_TASK_ID"))
    detect_order = 30
    options = OPTIONS
    # Grid Engine's -h holds the job instead: it is the user's to keep
    help_options = frozenset({"-help", "--help"})
    written_anyway = ("-S /bin/bash", "-cwd", "-j y")
    default_cluster = "abci2"
    job_starts_in_home = True
    # qsub -help's first line: "SGE 8.1.9", "UGE 8.6.x", "Altair Grid Engine ..."
    identify_argv = ("qsub", "-help")
    identity = r"^(SGE|UGE|OGS|Univa Grid Engine|Altair Grid Engine|Son of Grid Engine)\b.*$"
    output_escapes = (("$JOB_ID", "{job_id}"), ("$TASK_ID", "{array_index}"),
                      ("$JOB_NAME", "{name}"))
    output_folder_allowed = True        # -o logs/: Grid Engine writes NAME.oJOBID in it
    # `qmod -rj` is refused for a job in a queue "where jobs are not rerunable" unless the
    # job itself says -r y
    rerunnable_directives = ("-r y",)
    accounting_format = "qacct"
    explanations = (
        (r"SIM4403", "your group has fewer points left than this job's maximum charge "
         "(walltime x nodes x rate); check `show_point`, shorten the walltime or use fewer "
         "nodes, or ask your group's administrator to buy points"),
        (r"SIM4702", "a requested resource (nodes or walltime) is over the limit of its "
         "service; `abcitrain check` lists the limits"),
        (r"SIM0021", "an option value was refused; check the job spec's directives"),
        (r"Resource type is not specified", "ABCI needs a resource type, e.g. -l rt_F=1: "
         "check the profile's request templates"),
        (r"requested project .* does not exist", "the group (-g) is not one you belong to; "
         "check the group: key"),
        (r'invalid option argument "-g"', "this Grid Engine has no -g option: it is a stock "
         "Grid Engine, not ABCI's; use a profile whose group.submit_args is empty, such as "
         "'gridengine'"),
        (r"no suitable queues", "no queue can run this request (more of a resource than any "
         "host offers, or an unknown queue or parallel environment)"),
        (r'unknown resource "', "the cluster does not define this resource; check the "
         "profile's request templates"),
        (r"exceeds the end time of the advance reservation", "the walltime is longer than "
         "the time left in the reservation"),
        (r"advance reservation .* does not exist|invalid advance reservation",
         "the reservation id is not known to the scheduler"),
        (r"denied: job .* does not exist|does not exist", "the job is not known (it may "
         "have ended and left the queue)"),
    )

    def header_directives(self, spec: JobSpec, profile: object) -> list[str]:
        out = [f"-N {spec.name}", f"-l h_rt={self.walltime_text(spec.walltime_s)}",
               "-S /bin/bash", "-cwd"]
        if spec.error:
            out.append(f"-e {self._output(spec.error)}")
        else:
            out.append("-j y")                  # stderr into the output file
        if spec.output:
            out.append(f"-o {self._output(spec.output)}")
        if spec.array is not None:
            out.append(f"-t {spec.array}")
            if spec.max_concurrent:
                out.append(f"-tc {spec.max_concurrent}")
        if spec.depends_on:
            out.append(f"-hold_jid {','.join(spec.depends_on)}")
        return out

    @staticmethod
    def _output(path: str) -> str:
        return path.replace("{job_id}", "$JOB_ID").replace("{array_index}", "$TASK_ID") \
            .replace("{name}", "$JOB_NAME")

    def walltime_text(self, seconds: int) -> str:
        return format_hms(seconds)

    def plan_problems(self, spec: JobSpec, profile: ClusterProfile,
                      directives: Sequence[str]) -> list[Problem]:
        if spec.depends_on and spec.dependency == "afterok" and spec.chain is None:
            # a chain stage checks its own afterok (batch.chain)
            return [Problem("dependency", "Grid Engine's -hold_jid starts this job when the "
                            "others end, whatever their exit status (afterany)", "warning")]
        return []

    def name_problem(self, name: str) -> str | None:
        # qdel, qalter and -hold_jid take a job's name where they take its id
        if name.isdigit():
            return (f"{name!r} is digits only: Grid Engine's qdel and -hold_jid would read it "
                    "as a job id; put a letter in it")
        return None

    def list_names(self, option: str, resource_names: Sequence[str]) -> Mapping[str, str]:
        names = dict(self.options.lists.get(option, {}))
        if option == "-l":
            names |= {name: "resource" for name in resource_names}
        return names

    def import_request(self, directive: str, value: str, items: Mapping[str, str],
                       profile: ClusterProfile, data: dict[str, Any]) -> bool:
        for name, count in items.items():
            if name in profile.resource_types and count.isdigit():
                data["resource"], data["nodes"] = name, int(count)
                return True
        return False

    def requeue(self, env: Mapping[str, str]) -> Requeue | None:
        # rescheduled by its exit status: `qmod -rj` is refused from an execution host that
        # is not an admin host (sge_conf(5))
        return Requeue(exit_status=GE_RESCHEDULE_EXIT)

    def reservations(self, commands: Mapping[str, Sequence[str]]) -> ReservationBackend:
        from .reservations import GridEngineReservations

        return GridEngineReservations(commands)

    def submit_argv(self, script: str, extra_args: Sequence[str]) -> list[str]:
        return ["qsub", "-terse", *extra_args, script]

    def parse_submit(self, out: Output) -> str:
        text = out.stdout.strip()
        m = _SUBMIT_RE.search(text)
        if m:
            return m.group(1)
        first = text.splitlines()[-1].split(".")[0] if text else ""   # "3.1-3:1" for arrays
        if not first.isdigit():
            raise ValueError(f"qsub printed no job id: {out.stdout!r}")
        return first

    def submitted_argv(self) -> list[str] | None:
        # '*' matches every job name: the details of every job still in the queue
        return ["qstat", "-j", "*"]

    def parse_submitted(self, out: Output) -> dict[str, str]:
        found, job = {}, None
        for line in out.stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "job_number":
                job = value.strip()
            elif key.strip() == "script_file" and job:
                found[value.strip()] = job
        return found

    def holds_no_jobs(self, out: Output) -> bool:
        # with no job at all: "Following jobs do not exist: \n*", exit status 1 (Son of Grid
        # Engine 8.1.9, seen on this project's cell)
        return out.returncode == 1 and "Following jobs do not exist" in out.stdout + out.stderr

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["qstat", "-xml"]

    def parse_status(self, out: Output, job_ids: Sequence[str],
                     cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        warn: list[str] = []
        found: dict[str, list[tuple[JobState, str]]] = {}
        # qstat's own output on the submit host, not user data: no entity tricks to defuse
        root = ET.fromstring(out.stdout) if out.stdout.strip() else None  # noqa: S314
        for job in root.iter("job_list") if root is not None else ():
            number = (job.findtext("JB_job_number") or "").strip()
            raw = (job.findtext("state") or "").strip()
            found.setdefault(number, []).append((map_state(STATES, raw, warn), raw))
        result = {}
        for job_id in job_ids:
            if job_id in found:
                states = [s for s, _ in found[job_id]]
                raws = sorted({r for _, r in found[job_id]})
                # (no task counts: qstat shows a pending range of tasks as one entry)
                detail = "; ".join(warn)
                if any(r.startswith("E") for r in raws):
                    detail = f"error state: `qstat -j {job_id}` says why" + \
                        (f"; {detail}" if detail else "")
                result[job_id] = JobStatus(job_id, aggregate(states), ",".join(raws),
                                           detail=detail)
        return result

    def accounting_argvs(self, job_ids: Sequence[str]) -> list[list[str]]:
        return [["qacct", "-j", job_id] for job_id in job_ids]

    def parse_accounting(self, outs: Sequence[Output], job_ids: Sequence[str],
                         cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        records: dict[str, list[dict[str, str]]] = {}
        for out in outs:
            for record in parse_qacct(out.stdout):
                records.setdefault(record.get("jobnumber", ""), []).append(record)
        result = {}
        for job_id in job_ids:
            recs = records.get(job_id)
            if not recs:
                continue
            # one record per task (a rescheduled task has several: its last one counts)
            per_task: dict[str, dict[str, str]] = {}
            for rec in recs:
                per_task[rec.get("taskid", "undefined")] = rec
            tasks, ran = [], []
            for task, rec in per_task.items():
                failed = rec.get("failed", "0").split(":")[0].strip()
                code_text = rec.get("exit_status", "0").split()[0]
                code = int(code_text) if code_text.lstrip("-").isdigit() else 0
                deleted = rec.get("deleted_by", "NONE") not in ("NONE", "")
                if failed in FAILED_TIMEOUT:
                    state = JobState.TIMEOUT
                elif deleted or (job_id in cancelled and (failed in FAILED_DELETED
                                                          or code != 0)):
                    state = JobState.CANCELLED
                elif failed != "0" or code != 0:
                    state = JobState.FAILED
                else:
                    state = JobState.COMPLETED
                tasks.append(TaskEnd("" if task == "undefined" else task, state, code))
                if rec.get("start_time", "-/-").strip() not in ("-/-", ""):
                    ran.append(wallclock_s(rec))      # "-/-": the task never started
            state = aggregate([t.state for t in tasks])
            array = [t for t in tasks if t.index]
            raw = ",".join(sorted({r.get("failed", "0") for r in recs}))
            result[job_id] = JobStatus(
                job_id, state, f"failed={raw}",
                exit_code=first_failure_exit(array) if array else tasks[0].exit_code,
                elapsed_s=int(max(ran)) if ran else 0, detail=task_failures(array),
                task_elapsed=tuple(ran), final_usage=True, tasks_seen=len(array),
                task_states=task_rows(array))
        return result

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["qdel", *job_ids]

    hold_directive = "-h"

    def release_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["qrls", *job_ids]


def parse_qacct(text: str) -> list[dict[str, str]]:
    """Split ``qacct -j`` output into one mapping per record (key, then the rest of the line)."""
    return list(iter_qacct(text.splitlines()))


def iter_qacct(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """The records of ``qacct -j`` output, one at a time (for files too big to hold)."""
    current: dict[str, str] | None = None
    for line in lines:
        if line.startswith("====="):
            if current is not None:
                yield current
            current = {}
            continue
        if current is None or not line.strip():
            continue
        key, _, value = line.partition(" ")
        current[key] = value.strip()
    if current is not None:
        yield current


def wallclock_s(record: dict[str, str]) -> float:
    """A qacct record's ru_wallclock in seconds (SGE 8.1.9 prints "4s", others "0.020")."""
    return float(record.get("ru_wallclock", "0").rstrip("s") or 0)
