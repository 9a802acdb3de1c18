"""Job specs: load a YAML file or a Python mapping, validate it whole, build a ``JobSpec``.

Validation runs in two passes and reports every problem of both at once: the shape of the
spec (keys, types, forms), then what depends on the named cluster (resource type, service,
reservation and job-id forms, a required group).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import voluptuous as vol

from ..backends import get_backend
from ..domain import DEPENDENCY_KINDS, ArrayRange, ClusterProfile, JobSpec
from ..errors import InputError, Problem, UnknownNameError
from ..profiles import load_profile
from ..util import validation as v
from ..util.params import with_overrides
from ..util.words import did_you_mean
from ..util.yamlio import load_yaml_file
from .sweep import sweep_tasks

# A leading digit is fine for every scheduler (ABCI scripts name jobs 0150_pretrain, 0134);
# a digits-only name is each backend's to judge (Backend.name_problem: Grid Engine's qdel and
# -hold_jid would read it as a job id; OpenPBS takes it).
NAME_RE = r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}"
GROUP_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
MODULE_RE = r"[A-Za-z0-9][A-Za-z0-9_.+/-]{0,127}"
ENV_KEY_RE = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
OUTPUT_RE = r"[A-Za-z0-9_./+{}-]{1,255}"
OUTPUT_FIELDS = ("job_id", "array_index", "name")
# What a directive line may hold: an option, then values made only of characters that no
# scheduler's directive parser treats specially (no quotes, '#', '$', ';', spaces in values).
_VALUE = r"[A-Za-z0-9_.,:=+/@%-]+"
DIRECTIVE_RE = rf"(--?[A-Za-z][A-Za-z0-9_-]*)(?:[ =]({_VALUE}(?: {_VALUE})*))?"
DROP_RE = rf"--?[A-Za-z][A-Za-z0-9_-]*(?: {_VALUE})?"
ARRAY_RE = re.compile(r"(\d+)-(\d+)(?::(\d+))?")


#: Linux refuses any one argument or environment string longer than this when the job
#: starts (MAX_ARG_STRLEN: 32 pages of 4 KiB), so a longer value is refused here.
MAX_ARG_BYTES = 131072 - 1


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool) or value is None or not isinstance(value, str | int | float):
        raise vol.Invalid(f"{value!r} must be text or a number (quote yes/no/true/false)")
    text = str(value)
    if "\x00" in text:
        raise vol.Invalid("contains a NUL byte, which no shell can pass")
    size = len(text.encode("utf-8", "surrogateescape"))
    if size > MAX_ARG_BYTES:
        raise vol.Invalid(f"is {size} bytes: Linux refuses any one argument or environment "
                          f"value over {MAX_ARG_BYTES} bytes (MAX_ARG_STRLEN) when the job "
                          "starts; put large data in a file")
    return text


def _array(value: Any) -> ArrayRange:
    if isinstance(value, bool):
        raise vol.Invalid(f"{value!r} is not an array range")
    if isinstance(value, int):
        value = f"1-{value}"
    if isinstance(value, Mapping):
        value = f"{value.get('start', 1)}-{value.get('end')}:{value.get('step', 1)}"
    m = ARRAY_RE.fullmatch(str(value)) if isinstance(value, str) else None
    if not m:
        raise vol.Invalid(f"{value!r} is not an array range; write START-END, START-END:STEP "
                          "or a task count")
    start, end, step = int(m[1]), int(m[2]), int(m[3] or 1)
    if start < 1 or end < start or step < 1:
        raise vol.Invalid(f"{value!r}: need 1 <= START <= END and STEP >= 1")
    return ArrayRange(start, end, step)


def _output(value: Any) -> str:
    text = v.matching(OUTPUT_RE, "an output path is letters, digits and _ . / + - with "
                      "placeholders {job_id}, {array_index}, {name} (no spaces)")(value)
    if text.startswith("-"):
        raise vol.Invalid(f"{value[:40]!r} starts with '-': the scheduler would read it as "
                          "an option; write ./" + text[:40])
    fields = re.findall(r"\{([^{}]*)\}", text)
    bad = [f for f in fields if f not in OUTPUT_FIELDS]
    if bad or text.count("{") != len(fields) or text.count("}") != len(fields):
        raise vol.Invalid(f"{value!r}: the only placeholders are "
                          f"{', '.join('{' + f + '}' for f in OUTPUT_FIELDS)}")
    return text


def _script(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected the job's body as shell text (a YAML block: script: |)")
    if not value.strip():
        raise vol.Invalid("is empty: give the shell the job runs")
    if "\0" in value:
        raise vol.Invalid("holds a NUL character, which no shell script can")
    return value


def _nodes(value: Any) -> int | str:
    return "auto" if value == "auto" else v.int_between(1)(value)


def _workdir(value: Any) -> str:
    text = _scalar_text(value)
    if not text:
        raise vol.Invalid("is empty")
    return text


def _not_an_option(value: Any) -> str:
    text = _scalar_text(value)
    if text.startswith("-"):
        raise vol.Invalid(f"{text[:40]!r} starts with '-': a command would read it as an "
                          "option, not an id")
    return text


_directive_check = v.matching(
    DIRECTIVE_RE, "a directive is an option and values of letters, digits and _ . , : = + / @ "
    "% - (no quotes, '$', '#', ';', or newlines); use env: for values with other characters")

# ulimit's resource letters a job may set (bash's ulimit -a), each a count or "unlimited"
ULIMITS = "cdefilmnqrstuvx"
_SETUP = {
    vol.Optional("module_use", default=[]): v.string_list(_workdir),
    vol.Optional("module_purge", default=False): bool,
    vol.Optional("activate"): v.nullable(_workdir),
    vol.Optional("conda"): v.nullable(v.matching(
        r"[A-Za-z0-9_./+-]{1,255}", "a conda environment name or path")),
    vol.Optional("ulimit", default={}): {
        v.matching(f"[{ULIMITS}]", f"one of ulimit's letters {', '.join(ULIMITS)}"):
            vol.Any(v.int_between(0), v.one_of(("unlimited",), "a limit"))},
    vol.Optional("run", default=[]): [vol.All(
        vol.Msg(list, "each setup step is an argv list, not a shell string"),
        vol.Length(min=1, msg="needs at least the program to run"), [_scalar_text])],
}

SPEC_SCHEMA = vol.Schema({
    vol.Required("name"): v.matching(
        NAME_RE, "letters, digits, _ . + - only, starting with a letter or digit; at most "
        "63 characters"),
    vol.Required("cluster"): str,
    vol.Required("resource"): str,
    vol.Optional("command"): vol.All(
        vol.Msg(list, "expected a list of arguments (an argv), not a shell string"),
        vol.Length(min=1, msg="needs at least the program to run"), [_scalar_text]),
    # the job's body as shell text, kept verbatim (the alternative to command)
    vol.Optional("script"): v.nullable(_script),
    vol.Required("walltime"): v.duration,
    vol.Optional("nodes", default=1): _nodes,
    # Checked by abcitrain.train.config (its problems are prefixed train.).
    vol.Optional("train"): v.nullable(dict),
    vol.Optional("group"): v.nullable(v.matching(
        GROUP_RE, "a group is letters, digits, _ . - (starting with a letter or digit)")),
    vol.Optional("service"): v.nullable(str),
    vol.Optional("reservation"): v.nullable(_not_an_option),
    vol.Optional("modules", default=[]): v.string_list(v.matching(
        MODULE_RE, "a module name is letters, digits and _ . + / -")),
    vol.Optional("env", default={}): vol.All(vol.Msg(dict, "expected a mapping"), {
        v.matching(ENV_KEY_RE, "an environment variable name is letters, digits and _, "
                   "not starting with a digit"): _scalar_text}),
    vol.Optional("array"): v.nullable(_array),
    vol.Optional("depends_on", default=[]): v.string_list(vol.All(_not_an_option)),
    vol.Optional("dependency", default="afterok"): v.one_of(DEPENDENCY_KINDS, "dependency"),
    vol.Optional("output"): v.nullable(_output),
    # stderr apart from the output, to this path (unset: joined into the output)
    vol.Optional("error"): v.nullable(_output),
    vol.Optional("workdir"): v.nullable(_workdir),
    vol.Optional("extra_directives", default=[]): v.string_list(_directive_check),
    # submitted held: it waits until `abcitrain release` (qrls / scontrol release)
    vol.Optional("hold", default=False): bool,
    # steps before the command, for every scheduler: module paths, a virtualenv or conda env
    # to activate, ulimits (ulimit -l unlimited: pinned memory for DeepSpeed offload), and
    # commands as argv lists
    vol.Optional("setup"): vol.Any(None, _SETUP),
    # MPI layout: ranks on each node and threads per rank (PBS: select=N:mpiprocs=R:
    # ompthreads=T, as the ABCI 3.0 guide asks of MPI jobs; Slurm: --ntasks-per-node,
    # --cpus-per-task); OMP_NUM_THREADS follows threads_per_rank
    vol.Optional("ranks_per_node"): v.nullable(v.int_between(1, 4096)),
    vol.Optional("threads_per_rank"): v.nullable(v.int_between(1, 4096)),
    # a parameter sweep: one array job, one task per combination (batch.sweep)
    vol.Optional("sweep"): v.nullable(dict),
    # at most this many array tasks at once (Slurm %N, Grid Engine -tc, PBS max_run_subjobs)
    vol.Optional("max_concurrent"): v.nullable(v.int_between(1)),
    # run the command inside a Singularity/Apptainer image (batch.image)
    vol.Optional("container"): vol.Any(None, {
        # never starting with '-': the runtime would read it as one of its options
        vol.Required("image"): v.matching(r"[A-Za-z0-9_./+][A-Za-z0-9_./+-]{0,1023}",
                                          "a path to a .sif image: letters, digits and "
                                          "_ . / + -, not starting with '-'"),
        vol.Optional("binds", default=[]): v.string_list(v.matching(
            r"[A-Za-z0-9_./+][A-Za-z0-9_./+:-]{0,1023}", "a folder to bind: letters, "
            "digits and _ . / + : -, not starting with '-'")),
        vol.Optional("pattern", default="ranks"): v.one_of(("ranks", "launcher"),
                                                            "pattern")}),
    vol.Optional("drop_directives", default=[]): v.string_list(v.matching(
        DROP_RE, "name the option to drop, optionally with its first value (e.g. '-j' or "
        "'-l walltime')")),
})


def load_spec(path: Path, project_dir: Path | None = None,
              overrides: Sequence[tuple[str, Any]] = ()) -> tuple[JobSpec, ClusterProfile]:
    """Load a job spec file, apply command-line ``overrides`` (key, value) and validate the
    result against its cluster's profile, exactly as if the file had said so."""
    data = with_overrides(load_yaml_file(path), overrides)
    return parse_spec(data, source=str(path), project_dir=project_dir, source_path=path)


def parse_spec(data: Any, source: str = "job spec", project_dir: Path | None = None,
               source_path: Path | None = None) -> tuple[JobSpec, ClusterProfile]:
    """Validate a mapping (from YAML or Python) and build the spec and its profile."""
    if not isinstance(data, Mapping):
        raise InputError(f"{source} is not a job spec",
                         [Problem("", "expected a mapping of keys such as name, cluster, "
                                  "resource, command, walltime")])
    problems = v.problems_of(SPEC_SCHEMA, data)
    profile = None
    cluster = data.get("cluster")
    if isinstance(cluster, str):
        try:
            profile = load_profile(cluster, project_dir)
        except UnknownNameError as exc:
            problems.append(Problem("cluster", str(exc)))
    if profile is not None:
        problems += _cluster_problems(data, profile)
    problems += _training_problems(data)
    problems += _sweep_problems(data)
    if problems:
        raise InputError(f"{source} has errors", problems)
    clean = SPEC_SCHEMA(data)
    assert profile is not None
    spec = _build(clean, profile)
    if source_path is not None:
        spec = replace(spec, source=str(source_path.resolve()))
    return spec, profile


def _training_problems(data: Mapping[str, Any]) -> list[Problem]:
    train = data.get("train")
    problems = []
    if train is not None:
        from ..train.config import train_problems
        problems += train_problems(train) if isinstance(train, Mapping) else []
        if data.get("script") is not None:
            problems.append(Problem("script", "a training job's body is abcitrain's launcher: "
                                    "leave script: out (setup: runs steps before it)"))
    elif data.get("command") is not None and data.get("script") is not None:
        problems.append(Problem("script", "give command: (an argv) or script: (shell text), "
                                "not both"))
    elif data.get("script") is None and not data.get("command") and "command" not in data:
        problems.append(Problem("command", "required: the program to run (an argv list), "
                                "script: (the job's body as shell text), or a train: section "
                                "for a training job"))
    if data.get("script") is not None and data.get("container") is not None:
        problems.append(Problem("container", "runs command: inside the image; with script: "
                                "call the image from the script (singularity exec ...)"))
    if data.get("nodes") == "auto" and train is None:
        problems.append(Problem("nodes", "auto is for training jobs (a train: section), "
                                "where abcitrain plan picks the node count"))
    return problems


def _sweep_problems(data: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if data.get("sweep") is not None:
        problems += sweep_tasks(data["sweep"])[1]
        if data.get("array") is not None:
            problems.append(Problem("array", "a sweep is the array (one task per "
                                    "combination): leave array: out"))
    elif data.get("max_concurrent") is not None and data.get("array") is None:
        problems.append(Problem("max_concurrent", "limits an array's tasks: give array: or "
                                "sweep: too"))
    return problems


def _cluster_problems(data: Mapping[str, Any], profile: ClusterProfile) -> list[Problem]:
    problems = []
    resource = data.get("resource")
    if isinstance(resource, str) and resource not in profile.resource_types:
        hint = did_you_mean(resource, profile.resource_types)
        problems.append(Problem("resource", f"{resource!r} is not a resource type of cluster "
                                f"{profile.name!r}{hint}; choose one of: "
                                f"{', '.join(profile.resource_types)}"))
    service = data.get("service")
    if service is not None and service not in profile.services:
        problems.append(Problem("service", f"{service!r} is not a service of cluster "
                                f"{profile.name!r}; choose one of: {', '.join(profile.services)}"))
    name = data.get("name")
    if isinstance(name, str) and re.fullmatch(NAME_RE, name):
        why = get_backend(profile.scheduler).name_problem(name)
        if why:
            problems.append(Problem("name", why))
    reservation = data.get("reservation")
    if reservation is not None:
        if not profile.reservation_request:
            problems.append(Problem("reservation", f"cluster {profile.name!r} has no "
                                    "advance reservations"))
        elif not re.fullmatch(profile.reservation_pattern, str(reservation)):
            problems.append(Problem("reservation", f"{reservation!r} is not a reservation id "
                                    f"of {profile.name!r} (expected the form "
                                    f"{profile.reservation_pattern})"))
        if service is not None and service != "reserved":
            problems.append(Problem("service", f"{service!r} conflicts with reservation: jobs "
                                    "in a reservation use the reserved service"))
    deps = data.get("depends_on")
    if isinstance(deps, list):
        for i, dep in enumerate(deps):
            if (isinstance(dep, str | int) and not isinstance(dep, bool)
                    and not re.fullmatch(profile.job_id_pattern, str(dep))):
                problems.append(Problem(f"depends_on.{i}", f"{dep!r} is not a job id of "
                                        f"{profile.name!r}"))
    return problems


def _build(d: Mapping[str, Any], profile: ClusterProfile) -> JobSpec:
    service = d.get("service") or ("reserved" if d.get("reservation") else
                                   profile.default_service)
    sweep = tuple(sweep_tasks(d["sweep"])[0]) if d.get("sweep") is not None else ()
    array = ArrayRange(1, len(sweep)) if sweep else d.get("array")
    return JobSpec(
        name=d["name"], cluster=profile.name, resource=d["resource"],
        command=tuple(d.get("command") or ()), walltime_s=d["walltime"],
        nodes=0 if d["nodes"] == "auto" else d["nodes"], train=d.get("train"),
        group=d.get("group"), service=service, reservation=d.get("reservation"),
        modules=tuple(d["modules"]), env=dict(d["env"]), array=array,
        depends_on=tuple(d["depends_on"]), dependency=d["dependency"], output=d.get("output"),
        workdir=d.get("workdir"), extra_directives=tuple(d["extra_directives"]),
        drop_directives=tuple(d["drop_directives"]), hold=d["hold"],
        ranks_per_node=d.get("ranks_per_node"), threads_per_rank=d.get("threads_per_rank"),
        setup=d.get("setup"), sweep=sweep, max_concurrent=d.get("max_concurrent"),
        container=d.get("container"), script=d.get("script"), error=d.get("error"),
    )
