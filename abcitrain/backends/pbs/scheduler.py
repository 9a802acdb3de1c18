"""PBS Professional (ABCI 3.0): qsub, ``qstat -x -f -F json``, qdel, qrls, qrerun, and
what its directives mean.

Tested against captured real outputs (tests/data/samples/pbs, and openpbs/: a live OpenPBS
server's answers to abcitrain's own jobs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...domain import ClusterProfile, JobSpec, JobStatus
from ...errors import Problem
from ...util.durations import format_hms
from ..base import (
    Backend,
    JobVariables,
    Output,
    Requeue,
)
from ..options import OptionTable
from .status import parse_qstat_json

if TYPE_CHECKING:
    from ..reservations import ReservationBackend

#: qsub(1B)'s options that set a field abcitrain owns (getopt: one-letter options).
OPTIONS = OptionTable(
    short={"-N": "name", "-J": "array", "-q": "resource", "-P": "group", "-A": "group",
           "-o": "output", "-e": "output", "-j": "output"},
    # (place= says how chunks are put on hosts, not how many: the user's to keep)
    lists={"-l": {"walltime": "walltime", "select": "nodes", "nodes": "nodes",
                  "nodect": "nodes", "ncpus": "resource", "ngpus": "resource"},
           "-W": {"depend": "dependency"}})
_JOB_ID_RE = re.compile(r"^\s*([0-9]+(?:\[[0-9]*\])?(?:\.[A-Za-z0-9.-]+)?)\s*$", re.MULTILINE)


class PbsBackend(Backend):
    """PBS Professional's qsub/qstat/qdel."""

    name = "pbs"
    directive_prefix = "#PBS"
    template = "pbs.sh.j2"
    status_covers_finished = True
    variables = JobVariables(job_id="PBS_JOBID", array_index="PBS_ARRAY_INDEX",
                             submit_dir="PBS_O_WORKDIR", node_files=("PBS_NODEFILE",),
                             local_scratch="PBS_LOCALDIR", detect=("PBS_JOBID",))
    detect_order = 10
    options = OPTIONS
    # PBS's -h holds the job instead: it is the user's to keep
    help_options = frozenset({"--version", "--help"})
    written_anyway = ("-j oe",)
    default_cluster = "abci3"
    output_escapes = (("^array_index^", "{array_index}"),)
    output_names_job_id = False
    output_folder_allowed = True        # -o logs/: PBS copies JOBID.OU into it
    job_starts_in_home = True
    # qsub --version: "pbs_version = 23.06.06" (Grid Engine's qsub knows no --version)
    identify_argv = ("qsub", "--version")
    identity = r"^pbs_version\s*=\s*\S+"
    # the ABCI 3.0 guide: "The output file will be created after the job completes"
    output_appears_at_end = ("PBS copies a job's output there when it ends; to read it while "
                             "it runs, add `-k oe` to extra_directives (it then stays in your "
                             "home folder as NAME.oSEQUENCE and output: is not used)")
    # PBS keeps a finished job in `qstat -x` for job_history_duration (two weeks unless the
    # site says otherwise) and has no accounting query a user can make
    forgotten = ("PBS no longer knows this job (its history is kept for the server's "
                 "job_history_duration, or the id is not this server's): how it ended was "
                 "not seen, so nothing was settled; `abcitrain cancel` is not needed")
    # rerunnable, so that a function job may requeue itself; -r y is PBS's default
    rerunnable_directives = ("-r y",)
    explanations = (
        (r"Job violates queue and/or server resource limits", "the job is over a limit of "
         "its queue (nodes, walltime, or jobs per user); `abcitrain check` lists the limits"),
        (r"Illegal attribute or resource value", "a resource value was refused (for "
         "example select= or walltime=); check the job spec and the profile's request"),
        (r"Unknown queue", "the queue does not exist: a wrong resource type, or a "
         "reservation that has ended or was never confirmed"),
        (r"Job rejected by all possible destinations", "no queue accepts this job as "
         "asked; check the resource type, nodes and walltime"),
        (r"Unknown Job Id", "the scheduler does not know this job id (a typo, or its "
         "history has expired)"),
        (r"Job has finished", "the job has already finished"),
        (r"Failed to save job/resv", "the PBS server could not save the job; try again, "
         "then ask the support desk"),
        (r"illegally formed job identifier", "that is not a PBS job id (e.g. 1234.pbs1)"),
    )

    def header_directives(self, spec: JobSpec, profile: object) -> list[str]:
        out = [f"-N {spec.name}", f"-l walltime={self.walltime_text(spec.walltime_s)}"]
        if not spec.error:
            out.append("-j oe")                 # stderr into the output file
        path = output_directive(spec)
        if path:
            out.append(f"-o {path}")
        error = path_directive(spec.error, spec, "e") if spec.error else None
        if error:
            out.append(f"-e {error}")
        if spec.array is not None:
            out.append(f"-J {spec.array.start}-{spec.array.end}:{spec.array.step}")
            if spec.max_concurrent:
                # the job attribute (OpenPBS ATTR_max_run_subjobs); -J takes no %N here
                out.append(f"-W max_run_subjobs={spec.max_concurrent}")
        if spec.depends_on:
            out.append(f"-W depend={spec.dependency}:{':'.join(spec.depends_on)}")
        return out

    def walltime_text(self, seconds: int) -> str:
        return format_hms(seconds)

    def rank_layout(self, directives: Sequence[str], spec: JobSpec) -> list[str]:
        # into the select statement's chunk, as the ABCI 3.0 guide writes MPI jobs:
        # select=2:mpiprocs=8:ompthreads=12
        extra = (f":mpiprocs={spec.ranks_per_node}" if spec.ranks_per_node else "") + \
            (f":ompthreads={spec.threads_per_rank}" if spec.threads_per_rank else "")
        if not extra:
            return list(directives)
        return [d + extra if d.startswith("-l select=") and "mpiprocs=" not in d else d
                for d in directives]

    def combine(self, directives: Sequence[str]) -> list[str]:
        # qsub keeps only the LAST -v (each one frees and replaces the stored list; -l
        # accumulates): every variable goes into one list, where the first -v stood, or a
        # reservation's RTYPE would be lost to a user's -v USE_SSH=1
        items = [d.split(None, 1)[1] for d in directives
                 if d.startswith("-v ") and len(d.split(None, 1)) == 2]
        if len(items) < 2:
            return list(directives)
        out: list[str] = []
        for d in directives:
            if d.startswith("-v "):
                if not any(o.startswith("-v ") for o in out):
                    out.append("-v " + ",".join(items))
                continue
            out.append(d)
        return out

    def name_problem(self, name: str) -> str | None:
        # OpenPBS's verify_value_jobname (lib/Libecl) lets a submitted job's name start with
        # a digit (chk_alpha = 0 for QueueJob): ABCI 3.0 scripts use names like 0134
        return None

    def output_problem(self, spec: JobSpec) -> str | None:
        for path, letter in ((spec.output, "o"), (spec.error, "e")):
            if path and path_directive(path, spec, letter) is None:
                suffix = "OU" if letter == "o" else "ER"
                return (f"PBS puts no job id in an -{letter} path: use "
                        f"DIR/{{name}}.{letter}{{job_id}} (PBS writes DIR/JOBID.{suffix}, "
                        "its own name), {array_index} (one file per task), a fixed name, or "
                        f"leave it unset (PBS writes NAME.{letter}SEQUENCE)")
        return None

    def plan_problems(self, spec: JobSpec, profile: ClusterProfile,
                      directives: Sequence[str]) -> list[Problem]:
        found = []
        output = self.output_problem(spec)
        if output:
            found.append(Problem("output", output))
        # -k o keeps the output on the execution host and -o is not used (the ABCI 3.0
        # guide); with d ("direct", qsub(1B)) PBS writes it straight to the -o path instead
        keep = [d for d in directives
                if (m := re.match(r"-k\s*([a-z]+)", d)) and "o" in m[1] and "d" not in m[1]]
        if keep and any(d.startswith("-o") for d in directives):
            found.append(Problem("extra_directives", f"{keep[0]!r} keeps the output on the "
                                 "execution host, so PBS ignores the -o path: the log will "
                                 "not be where `abcitrain logs` looks", "warning"))
        return found

    def owned_item(self, option: str, item: str, nodes: int | None
                   ) -> list[tuple[str, str]] | None:
        name = item.split("=")[0].split(":")[0].strip()
        if option == "-l" and name == "select" and nodes is not None \
                and item.partition("=")[2].split(":")[0] == str(nodes):
            # a select of exactly the spec's chunks is the same request spelled in more
            # detail (:mpiprocs=8): not counted, and it may replace abcitrain's
            return []
        if option == "-l" and name.isdigit():
            return [("nodes", f"{option} {item}")]        # old style: -l 2:ncpus=4
        return None

    def lift_variables(self, directive: str, data: dict[str, Any]) -> str:
        # ABCI 3.0's -v RTYPE=rt_HF (mandatory in a reservation) is the resource type:
        # abcitrain writes it from the spec; the other variables stay
        if not directive.startswith("-v "):
            return directive
        items = [i for i in directive[3:].split(",") if i]
        for item in items:
            if item.startswith("RTYPE="):
                data["resource"] = item.split("=", 1)[1]
        rest = [i for i in items if not i.startswith("RTYPE=")]
        return "-v " + ",".join(rest) if rest else ""

    def import_request(self, directive: str, value: str, items: Mapping[str, str],
                       profile: ClusterProfile, data: dict[str, Any]) -> bool:
        if directive.startswith("-q"):
            if value in profile.resource_types:
                data["resource"] = value
                return True
            if re.fullmatch(profile.reservation_pattern, value):
                data["reservation"] = value      # a reservation is its own queue
                return True
            return False
        if "select" in items:
            chunk = items["select"].split(":")
            if not chunk[0].isdigit():
                return False
            data["nodes"] = int(chunk[0])
            layout = dict(c.split("=", 1) for c in chunk[1:] if "=" in c)
            for key, spec_key in (("mpiprocs", "ranks_per_node"),
                                  ("ompthreads", "threads_per_rank")):
                if layout.get(key, "").isdigit():
                    data[spec_key] = int(layout[key])
            return True
        return False

    def requeue(self, env: Mapping[str, str]) -> Requeue | None:
        # qrerun(1B) reserves qrerun to PBS Managers and Operators
        return Requeue(argv=("qrerun", env["PBS_JOBID"]), needs=(
            "qrerun needs PBS Manager or Operator privilege; where the site does not grant "
            "it, the function stops at its checkpoint: submit it again to resume"))

    def reservations(self, commands: Mapping[str, Sequence[str]]) -> ReservationBackend:
        from .reservations import PbsReservations

        return PbsReservations(commands)

    def job_id_for_output(self, job_id: str) -> str:
        return job_id.split(".")[0].split("[")[0]

    def output_file(self, output: str, name: str, job_id: str, task: int | None) -> str:
        return pbs_output_file(output, name, job_id, task) or \
            super().output_file(output, name, job_id, task)

    def submit_argv(self, script: str, extra_args: Sequence[str]) -> list[str]:
        return ["qsub", *extra_args, script]

    def parse_submit(self, out: Output) -> str:
        m = _JOB_ID_RE.search(out.stdout)
        if not m:
            raise ValueError(f"qsub printed no job id: {out.stdout!r}")
        return m.group(1)

    def submitted_argv(self) -> list[str] | None:
        # every job the server shows (-x: finished ones too); Submit_arguments ends with
        # the script qsub was given (live OpenPBS answers: tests/data/samples/openpbs)
        return ["qstat", "-x", "-f", "-F", "json"]

    def parse_submitted(self, out: Output) -> dict[str, str]:
        import shlex

        try:
            jobs = json.loads(out.stdout or "{}").get("Jobs") or {}
        except ValueError:
            return {}
        found = {}
        for job_id, attrs in jobs.items():
            try:
                words = shlex.split(str(attrs.get("Submit_arguments", "")))
            except ValueError:
                continue
            if words:
                found[words[-1]] = job_id
        return found

    def status_argv(self, job_ids: Sequence[str]) -> list[str]:
        # -x includes finished jobs, so one call answers for running and ended jobs alike;
        # -t adds every subjob of an array, each with its own state, exit and walltime.
        # Several ids: OpenPBS's JSON answers for the first one only (a live 23.06 server,
        # README of shared/vendor/openpbs), while no id answers for every job the server
        # holds, in one call: the jobs asked for are picked from it.
        return ["qstat", "-x", "-t", "-f", "-F", "json",
                *(job_ids if len(job_ids) == 1 else ())]

    def parse_status(self, out: Output, job_ids: Sequence[str],
                     cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        return parse_qstat_json(out.stdout, job_ids, cancelled)

    def accounting_argvs(self, job_ids: Sequence[str]) -> list[list[str]]:
        return []     # `qstat -x` already answered for finished jobs

    def parse_accounting(self, outs: Sequence[Output], job_ids: Sequence[str],
                         cancelled: frozenset[str] = frozenset()) -> dict[str, JobStatus]:
        return {}

    def cancel_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["qdel", *job_ids]

    hold_directive = "-h"

    def release_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["qrls", *job_ids]


def output_directive(spec: JobSpec) -> str | None:
    """The ``-o`` value for the spec's output, or None when there is none or PBS cannot
    write it (``path_directive``)."""
    return path_directive(spec.output, spec, "o") if spec.output else None


def path_directive(path: str, spec: JobSpec, letter: str) -> str | None:
    """The ``-o`` (``letter`` o) or ``-e`` (e) value for ``path``: "" when PBS's own default
    is that file (NAME.oSEQUENCE in the submit folder, NAME.oSEQUENCE.INDEX for an array's
    task), so no option is written; None when PBS cannot write it. PBS expands
    ``^array_index^`` (each task keeps its own log) but no job id. The default name in a
    folder (``logs/{name}.o{job_id}``) is written as ``-o logs/``: PBS then copies its spool
    file into the folder under the spool's name, JOBID.OU (JOBID.ER for ``-e``), as a live
    OpenPBS does (``pbs_output_file``)."""
    path = path.replace("{name}", spec.name)
    if path == f"{spec.name}.{letter}{{job_id}}" + (".{array_index}" if spec.array else ""):
        return ""
    path = path.replace("{array_index}", "^array_index^")
    if "{job_id}" not in path:
        return path
    folder, _, file = path.rpartition("/")
    if spec.array is None and file == f"{spec.name}.{letter}{{job_id}}" and folder \
            and "{" not in folder:
        return f"{folder}/"
    return None


def pbs_output_file(output: str, name: str, job_id: str, task: int | None) -> str | None:
    """The file PBS writes for the recorded output ``output`` when it is a folder (``-o
    logs/``, as an imported script gives it, or ``logs/{name}.o{job_id}``, which
    ``path_directive`` writes so): FOLDER/JOBID.OU, the id as qsub printed it, or the
    subjob's id for an array's task (mom copies the spool's file into the folder); None
    for every other form."""
    folder, _, file = output.rpartition("/")
    if not folder or "{" in folder or file not in ("", f"{name}.o{{job_id}}"):
        return None
    if task is not None:
        if file:
            return None              # path_directive refuses this form for an array
        job_id = job_id.replace("[]", f"[{task}]", 1)
    return f"{folder}/{job_id}.OU"
