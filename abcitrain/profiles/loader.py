"""Cluster profiles: versioned YAML data, never constants in code.

A profile is found by name in three layers, later ones winning key by key (deep merge; lists
are replaced whole): the profiles shipped in ``abcitrain/profiles/``, the user's config folder
(``$ABCITRAIN_CONFIG_DIR`` or the platform's, under ``clusters/``), and the project's
``.abcitrain/clusters/``. Extra folders may be listed in ``$ABCITRAIN_CLUSTERS_PATH``. A file's
name is its profile's name; ``extends: OTHER`` starts a new profile from another one.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import string
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import voluptuous as vol

from ..domain import SERVICES, ClusterProfile, ResourceType, ServiceLimits
from ..errors import InputError, Problem, UnknownNameError
from ..util import validation as v
from ..util.words import did_you_mean
from ..util.yamlio import load_yaml_file

BUILTIN_DIR = Path(__file__).parent   # the shipped profiles sit beside the loader
PLACEHOLDERS = frozenset(
    {"type", "nodes", "gpus", "cpus", "gpus_total", "group", "reservation",
     "reservation_queue", "walltime"}
)
# The placeholders of a reservation's create command (one argv item per template).
RESERVATION_PLACEHOLDERS = frozenset(
    {"name", "nodes", "days", "group", "type", "user", "start", "end", "duration"}
)
_NAME = r"[A-Za-z][A-Za-z0-9_.-]{0,62}"


def _template_of(known: frozenset[str]) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str) or "\n" in value:
            raise vol.Invalid(f"{value!r} is not a template (one line of text)")
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise vol.Invalid(f"{value!r}: {exc}") from None
        unknown = fields - known
        if unknown:
            raise vol.Invalid(f"{value!r} uses unknown placeholder(s) {sorted(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        return value

    return check


_template = _template_of(PLACEHOLDERS)
_argv_template = _template_of(RESERVATION_PLACEHOLDERS)
_id_template = _template_of(frozenset({"id"}))


def _scheduler(value: Any) -> str:
    """A registered scheduler's name (``abcitrain.backends``: the entry points)."""
    from ..backends import backend_names

    return str(v.one_of(backend_names(), "scheduler")(value))


def _clock(value: Any) -> str:
    """A time of day, kept as "HH:MM" text (the profile's data stays printable as YAML)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value // 60}:{value % 60:02d}"     # YAML 1.1 reads 10:00 as 600
    try:
        return dt.time.fromisoformat(str(value).zfill(5)).strftime("%H:%M")
    except ValueError:
        raise vol.Invalid(f"{value!r} is not a time of day (HH:MM)") from None


def _timezone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise vol.Invalid(f"{value!r} is not a time zone name (e.g. Asia/Tokyo)") from None
    return str(value)


def _regex(value: Any) -> str:
    try:
        re.compile(value)
    except (re.error, TypeError) as exc:
        raise vol.Invalid(f"{value!r} is not a regular expression: {exc}") from None
    return str(value)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise vol.Invalid(f"{value!r} is not a date (YYYY-MM-DD)") from None


_SERVICE_COEFFS: dict[Any, Any] = {vol.Optional(s): v.number_at_least(0) for s in SERVICES}
_TARIFFS = {
    vol.Optional("minimum_seconds", default=0): v.number_at_least(0),
    vol.Optional("services", default=[]): [vol.Schema(
        {vol.Required("from"): _date, vol.Optional("note"): str,
         **_SERVICE_COEFFS})],
    vol.Optional("types", default={}): {str: [{
        vol.Required("from"): _date, vol.Required("rate"): v.number_at_least(0),
        vol.Optional("note"): str}]},
}
_LIMITS = {
    vol.Optional("max_nodes"): v.int_between(1),
    vol.Optional("max_walltime"): v.duration,
    vol.Optional("max_node_hours"): v.number_at_least(0),
}
_RESERVATION_LIMITS = {
    vol.Required("from"): _date,
    vol.Optional("max_nodes"): v.int_between(1),
    vol.Optional("max_node_hours"): v.number_at_least(0),
    vol.Optional("min_days"): v.number_at_least(0),
    vol.Optional("max_days"): v.number_at_least(0),
    vol.Optional("note"): str,
}
_RESERVATIONS = {
    # daily: whole days from starts_at to ends_at the day after the last (ABCI); free: any
    # start and length (Slurm, stock Grid Engine)
    vol.Optional("calendar", default="free"): v.one_of(("daily", "free"), "calendar"),
    vol.Optional("timezone"): vol.Any(None, _timezone),
    vol.Optional("starts_at", default="10:00"): _clock,
    vol.Optional("ends_at", default="09:30"): _clock,
    vol.Optional("booking_closes", default="21:00"): _clock,   # on the day before the start
    # the commands, as argv lists: create (with {start}, {days}, {nodes}, ...), and list,
    # show, delete ({id}: the reservation). No default: the same name means different
    # commands on different sites (ABCI's qrstat wraps PBS; Grid Engine has its own qrstat).
    vol.Optional("create"): v.string_list(_argv_template),
    vol.Optional("list"): v.string_list(_id_template),
    vol.Optional("show"): v.string_list(_id_template),
    vol.Optional("delete"): v.string_list(_id_template),
    vol.Optional("group_args", default=[]): v.string_list(_argv_template),
    vol.Optional("type_args", default={}): {str: v.string_list(_argv_template)},
    vol.Required("limits"): {str: [_RESERVATION_LIMITS]},
}
_RESOURCE_TYPE = {
    vol.Optional("description", default=""): str,
    vol.Required("exclusive"): bool,
    vol.Required("cpus"): v.int_between(1),
    vol.Required("gpus"): v.int_between(0),
    vol.Required("memory_gb"): v.number_at_least(0),
    vol.Optional("gpu_model"): vol.Any(None, str),
    vol.Optional("gpu_memory_gb"): vol.Any(None, v.number_at_least(0)),
    vol.Optional("limits", default={}): {vol.Any(*SERVICES): _LIMITS},
    vol.Optional("request"): v.string_list(_template),
}
def _launcher_choice(data: Any) -> Any:
    from ..domain import LAUNCHER_KINDS as KINDS
    from ..domain import LAUNCHER_MULTINODE as MULTINODE
    kind = data.get("kind", "torchrun")
    if kind not in KINDS:
        raise vol.Invalid(f"{kind!r} is not a launcher; choose one of: {', '.join(KINDS)}",
                          path=["kind"])
    multi = data.get("multinode", MULTINODE[kind][0])
    if multi not in MULTINODE[kind]:
        raise vol.Invalid(f"{multi!r} does not start {kind} across nodes; choose one of: "
                          f"{', '.join(MULTINODE[kind])}", path=["multinode"])
    return data


# How `abcitrain launch` starts the ranks (abcitrain.launch.commands).
_LAUNCHER = vol.All({
    vol.Optional("kind", default="torchrun"): str,
    vol.Optional("multinode"): str,
    vol.Optional("ssh_port"): v.nullable(v.int_between(1, 65535)),
    vol.Optional("ssh_port_env"): v.nullable(v.matching(r"[A-Za-z_][A-Za-z0-9_]*",
                                                        "an environment variable name")),
    vol.Optional("env", default={}): {v.matching(r"[A-Za-z_][A-Za-z0-9_]*",
                                                 "an environment variable name"):
                                      vol.Any(str, int, float)},
    vol.Optional("mpirun_args", default=[]): v.string_list(str),
    # directives a multi-node training job needs for the launcher to reach its other nodes
    vol.Optional("request", default=[]): v.string_list(_template),
    # pdsh and Open MPI split these on blanks and ssh hands them to no shell: one plain
    # word each, nothing a shell or a splitter would read differently
    vol.Optional("ssh_args", default=[]): v.string_list(v.matching(
        r"[A-Za-z0-9_@%+=:,./~-]+", "one ssh argument without blanks, quotes or shell "
        "characters (write -o Option=value as two items)")),
}, _launcher_choice)


PROFILE_SCHEMA = vol.Schema({
    vol.Optional("name"): str,
    vol.Optional("extends"): str,
    vol.Optional("description", default=""): str,
    vol.Required("scheduler"): _scheduler,
    vol.Optional("services", default=list(SERVICES)): [v.one_of(SERVICES, "service")],
    vol.Optional("default_service", default="spot"): v.one_of(SERVICES, "service"),
    vol.Optional("group", default={}): {
        vol.Optional("required", default=False): bool,
        vol.Optional("directives", default=[]): v.string_list(_template),
        vol.Optional("submit_args", default=[]): v.string_list(_template),
    },
    vol.Required("request"): v.string_list(_template),
    vol.Optional("reservation", default={}): {
        vol.Optional("pattern", default=r"[A-Za-z0-9_.-]+"): _regex,
        vol.Optional("request", default=[]): v.string_list(_template),
        # PBS puts a reservation's jobs in its own queue instead of the type's queue.
        vol.Optional("replaces_request", default=False): bool,
    },
    vol.Required("job_id_pattern"): _regex,
    vol.Optional("module_init"): vol.Any(None, str),
    # environment modules the site is known to offer (`abcitrain import --to` names the ones
    # a script loads that are not here); a bare name (cuda) matches any version of it
    vol.Optional("modules", default=[]): v.string_list(v.matching(
        r"[A-Za-z0-9][A-Za-z0-9_.+/-]{0,127}", "a module name is letters, digits and _ . + / -")),
    vol.Optional("array_max_tasks"): vol.Any(None, v.int_between(1)),
    # the container runtime on the compute nodes: the command (singularity | apptainer), the
    # environment module that provides it, and the folders an image sees (--bind)
    vol.Optional("container", default={}): {
        vol.Optional("runtime", default="apptainer"): vol.In(["singularity", "apptainer"]),
        vol.Optional("module"): vol.Any(None, vol.All(str, vol.Length(min=1, max=128))),
        vol.Optional("binds", default=[]): [vol.All(str, vol.Length(min=1, max=4096))]},
    # polling (service.poll): the least time between two status queries to this scheduler
    # from all of a user's abcitrain processes together
    vol.Optional("poll", default={}): {
        vol.Optional("min_interval_s"): v.number_at_least(0)},
    # how to reach the login node from elsewhere (README: From a laptop); other keys are hints
    vol.Optional("login", default={}): {
        vol.Optional("mode"): vol.In(["auto", "ssh", "local"]),
        vol.Optional("ssh"): vol.Any(None, vol.All(str, vol.Length(min=1, max=255))),
        vol.Optional("workdir"): vol.Any(None, vol.All(str, vol.Length(min=1, max=4096))),
        str: vol.Any(str, int, None)},
    vol.Required("resource_types"): vol.All(
        vol.Length(min=1, msg="at least one resource type is needed"),
        {v.matching(_NAME, "a resource type name is letters, digits, '_', '.', '-'"):
            _RESOURCE_TYPE},
    ),
    vol.Optional("tariffs"): _TARIFFS,
    # How long past its walltime the scheduler may let a job run before it is killed (PBS's
    # mom checks walltime every $check_poll_time): the charge can exceed the walltime's.
    vol.Optional("walltime_overrun"): v.duration,
    # The day the system stopped taking jobs (ABCI 2.0: 2024-10-31): past it, submitting
    # and booking are refused and checking warns; pricing history still works.
    vol.Optional("retired"): vol.Any(None, _date),     # null: a site that copies it lives on
    vol.Optional("reservations"): _RESERVATIONS,
    vol.Optional("launcher"): _LAUNCHER,
})


def search_dirs(project_dir: Path | None = None) -> list[Path]:
    """The profile folders, lowest precedence first."""
    dirs = [BUILTIN_DIR]
    config = os.environ.get("ABCITRAIN_CONFIG_DIR")
    if config:
        dirs.append(Path(config) / "clusters")
    else:
        from platformdirs import user_config_dir

        dirs.append(Path(user_config_dir("abcitrain")) / "clusters")
    extra = os.environ.get("ABCITRAIN_CLUSTERS_PATH", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    dirs.append((project_dir or Path.cwd()) / ".abcitrain" / "clusters")
    return dirs


def available_names(project_dir: Path | None = None) -> list[str]:
    """Every profile name found in any layer, sorted."""
    names: set[str] = set()
    for d in search_dirs(project_dir):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def _layers(name: str, project_dir: Path | None) -> Iterator[Path]:
    for d in search_dirs(project_dir):
        path = d / f"{name}.yaml"
        if path.is_file():
            yield path


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` onto ``base``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def raw_profile(name: str, project_dir: Path | None = None,
                _seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """Return the merged, unvalidated data of profile ``name`` and the files it came from."""
    if not re.fullmatch(_NAME, name):
        raise UnknownNameError(f"{name[:60]!r}{'...' if len(name) > 60 else ''} is not a "
                               "cluster name (letters, digits, _ . -, starting with a letter)")
    if name in _seen:
        raise InputError("cluster profiles extend each other in a loop",
                         [Problem("extends", " -> ".join((*_seen, name)))])
    merged: dict[str, Any] = {}
    sources: list[str] = []
    for path in _layers(name, project_dir):
        data = load_yaml_file(path)
        if not isinstance(data, Mapping):
            raise InputError(f"{path} is not a cluster profile",
                             [Problem(str(path), "expected a mapping of keys")])
        declared = data.get("name")
        if declared is not None and declared != name:
            raise InputError(f"{path} is not a valid cluster profile", [Problem(
                "name", f"{declared!r} differs from the file name {name!r}; rename one")])
        parent = data.get("extends")
        if parent and not merged:
            merged, parent_sources = raw_profile(str(parent), project_dir, (*_seen, name))
            sources += parent_sources
        merged = deep_merge(merged, {k: val for k, val in data.items() if k != "extends"})
        sources.append(str(path))
    if not sources:
        known = available_names(project_dir)
        raise UnknownNameError(f"unknown cluster {name!r}{did_you_mean(name, known)}; known "
                               f"clusters: {', '.join(known)}. "
                               f"Add your own as .abcitrain/clusters/{name}.yaml")
    merged["name"] = name
    return merged, sources


#: Profiles already loaded in this process, with the state of the profile folders they were
#: read from: one submission asks for its profile several times (spec check, transport,
#: pricing, backend), and parsing and validating the YAML each time cost ~12 ms.
_LOADED: dict[tuple[str, tuple[str, ...]], tuple[tuple[Any, ...], ClusterProfile]] = {}


def _folders_state(dirs: list[Path]) -> tuple[Any, ...]:
    """Every profile file in ``dirs`` with its size and modification time: any file added,
    removed or changed in any layer gives another value."""
    state: list[Any] = []
    for d in dirs:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            state.append((str(d), None))
            continue
        for entry in entries:
            if entry.name.endswith(".yaml"):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                state.append((entry.path, st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(state)


def load_profile(name: str, project_dir: Path | None = None) -> ClusterProfile:
    """Load, merge and validate profile ``name`` (once per process while its folders do not
    change)."""
    dirs = search_dirs(project_dir)
    key = (name, tuple(str(d) for d in dirs))
    state = _folders_state(dirs)
    known = _LOADED.get(key)
    if known is not None and known[0] == state:
        return known[1]
    profile = _load_profile(name, project_dir)
    _LOADED[key] = (state, profile)
    return profile


def _load_profile(name: str, project_dir: Path | None) -> ClusterProfile:
    data, sources = raw_profile(name, project_dir)
    clean = v.validate(PROFILE_SCHEMA, data, f"cluster profile {name!r} ({', '.join(sources)})")
    problems = []
    if clean["default_service"] not in clean["services"]:
        problems.append(Problem("default_service", f"{clean['default_service']!r} is not in "
                                f"services {clean['services']}"))
    if problems:
        raise InputError(f"cluster profile {name!r} is inconsistent", problems)
    return _build(clean, sources)


def _build(d: Mapping[str, Any], sources: list[str]) -> ClusterProfile:
    types = {}
    for tname, t in d["resource_types"].items():
        limits = {
            service: ServiceLimits(
                max_nodes=lim.get("max_nodes"),
                max_walltime_s=lim.get("max_walltime"),
                max_node_hours=(Decimal(str(lim["max_node_hours"]))
                                if lim.get("max_node_hours") is not None else None),
            )
            for service, lim in t["limits"].items()
        }
        types[tname] = ResourceType(
            name=tname, description=t["description"], exclusive=t["exclusive"], cpus=t["cpus"],
            gpus=t["gpus"], memory_gb=float(t["memory_gb"]), gpu_model=t.get("gpu_model"),
            gpu_memory_gb=(float(t["gpu_memory_gb"]) if t.get("gpu_memory_gb") is not None
                           else None),
            limits=limits, request=tuple(t["request"]) if "request" in t else None,
        )
    return ClusterProfile(
        name=d["name"], description=d["description"], scheduler=d["scheduler"],
        services=tuple(d["services"]), default_service=d["default_service"],
        resource_types=types, group_required=d["group"]["required"],
        group_directives=tuple(d["group"]["directives"]),
        group_submit_args=tuple(d["group"]["submit_args"]), request=tuple(d["request"]),
        reservation_request=tuple(d["reservation"]["request"]),
        reservation_pattern=d["reservation"]["pattern"],
        reservation_replaces_request=d["reservation"]["replaces_request"],
        job_id_pattern=d["job_id_pattern"],
        module_init=d.get("module_init"), array_max_tasks=d.get("array_max_tasks"),
        login=dict(d["login"]), source=", ".join(sources), data=dict(d),
    )
