"""An existing qsub/sbatch script becomes a job spec, with every line it could not carry.

Pure: text in, a spec mapping and the list of lines left behind out. Directives are read
the way each scheduler reads them, up to the first command: its backend says which prefix
(``#PBS``, ``#$``, ``#SBATCH``), which options set which spec fields, and how it spells
walltime, nodes and resource types; the body's module loads, exported variables, setup lines and the
command become ``modules``, ``env``, ``setup`` and ``command``. What has no place in a spec
is listed with the reason, never dropped silently.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..backends import Backend, all_backends, backend_by_prefix, get_backend
from ..domain import ClusterProfile
from ..errors import InputError
from .spec import DIRECTIVE_RE

_SHELL_OPS = re.compile(r"[|&;<>`]|\$\(")
_MODULE_INIT = re.compile(r"^(source|\.)\s+\S*/(modules|module)\.(sh|bash)\s*$")
_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Imported:
    """A script read into a spec: the spec's data and what could not come along."""

    scheduler: str
    data: dict[str, Any]
    dropped: list[tuple[int, str, str]] = field(default_factory=list)   # (line, text, why)

    def drop(self, number: int, text: str, why: str) -> None:
        """Record a line the spec cannot say, with the reason."""
        self.dropped.append((number, text, why))


def scheduler_of(text: str) -> str | None:
    """Which scheduler a script is written for, by its directive prefix."""
    for line in text.splitlines():
        backend = backend_by_prefix(line)
        if backend is not None:
            return backend.name
    return None


def default_cluster(scheduler: str) -> str | None:
    """The cluster profile a script of ``scheduler`` is read for when none is named."""
    return get_backend(scheduler).default_cluster


def read_script(text: str, profile: ClusterProfile, name: str = "imported") -> Imported:
    """Read ``text`` (a job script for ``profile``'s scheduler) into a spec mapping."""
    backend = get_backend(profile.scheduler)
    prefix = backend.directive_prefix
    out = Imported(backend.name, {"name": name, "cluster": profile.name})
    lines = text.splitlines()
    body_start = 0
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if number == 1 and stripped.startswith("#!"):
            continue
        if line.startswith(prefix):
            _directive(out, backend, number, line[len(prefix):].strip(), profile)
            body_start = number
            continue
        if stripped and not stripped.startswith("#"):
            break             # the scheduler reads directives up to the first command
        body_start = number
    _body(out, lines, body_start)
    return out


def _directive(out: Imported, backend: Backend, number: int, text: str,
               profile: ClusterProfile) -> None:
    """One directive line: the fields abcitrain owns become spec keys, the rest extras."""
    data = out.data
    for part, quoted in _split_options(text):
        if quoted:
            out.drop(number, part, "a quoted value with blanks: a directive line abcitrain "
                     "writes holds plain words only; set it in the spec by hand")
            continue
        if part in backend.written_anyway:
            continue                          # abcitrain writes this one itself
        owned = backend.owned_fields(part, tuple(profile.resource_types))
        if not owned:
            part = backend.lift_variables(part, data)   # PBS: RTYPE is the resource type
            if not part:
                continue
        if not owned:
            if re.fullmatch(DIRECTIVE_RE, part):
                data.setdefault("extra_directives", []).append(part)
            else:
                out.drop(number, part, "not a directive abcitrain can write safely (quotes, "
                         "$ or spaces in a value): set it in the spec by hand")
            continue
        if not _owned_to_spec(out, backend, part, {f for f, _ in owned}, profile):
            out.drop(number, part, f"sets {', '.join(sorted({f for f, _ in owned}))} in a "
                     "form abcitrain does not read: set the spec's keys by hand")


def _split_options(text: str) -> list[tuple[str, bool]]:
    """One directive line may hold several options (``-l a=1 -j oe``): one string each,
    and whether it held a quoted value with blanks (which no written line can carry)."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return [(text, True)]
    parts: list[list[str]] = []
    for word in words:
        if word.startswith("-") or not parts:
            parts.append([word])
        else:
            parts[-1].append(word)
    return [(" ".join(p), any(any(c.isspace() for c in w) for w in p)) for p in parts]


def _value(part: str) -> str:
    """The value of ``-o VALUE``, ``--opt=VALUE`` or ``-oVALUE``."""
    if part.startswith("--"):
        return part.split("=", 1)[1] if "=" in part else part.split(None, 1)[-1]
    head, _, rest = part.partition(" ")
    return rest.strip() if rest else head[2:]


def _owned_to_spec(out: Imported, backend: Backend, part: str, fields: set[str],
                   profile: ClusterProfile) -> bool:
    """Put what ``part`` sets into the spec; False when its form is not understood."""
    data, value = out.data, _value(part)
    if fields == {"name"}:
        data["name"] = value
    elif fields == {"array"}:
        data["array"] = value.split("%")[0]           # Slurm's %N throttle has no spec key
    elif fields == {"output"}:
        if part.startswith(("-j", "--error", "-e")):
            return True                               # abcitrain joins stderr into stdout
        data["output"] = _placeholders(value, backend)
    elif fields == {"group"}:
        data["group"] = value
    elif fields == {"dependency"}:
        m = re.fullmatch(r"(?:depend=)?(afterok|afterany):(.+)", value)
        if m:
            data["dependency"] = m[1]
            data["depends_on"] = [j for j in m[2].split(":") if j]
        elif part.startswith("-hold_jid"):
            data["depends_on"] = value.split(",")
        else:
            return False
    elif fields == {"reservation"}:
        data["reservation"] = value
    elif fields == {"workdir"}:
        if part.strip() != "-cwd":
            data["workdir"] = value
    elif "walltime" in fields or "nodes" in fields or "resource" in fields:
        return _request(out, backend, part, value, profile)
    else:
        return False
    return True


def _request(out: Imported, backend: Backend, part: str, value: str,
             profile: ClusterProfile) -> bool:
    """Walltime, nodes and resource type, from the scheduler's spelling."""
    data = out.data
    items = dict(re.findall(r"([A-Za-z_.]+)=([^,]+)", value))
    if "walltime" in items or "h_rt" in items or part.startswith(("-t", "--time")):
        text = items.get("walltime") or items.get("h_rt") or value
        try:
            data["walltime"] = backend.parse_walltime(text)
        except ValueError:
            return False
        rest = {k: v for k, v in items.items() if k not in ("walltime", "h_rt")}
        if not rest:
            return True
        items = rest
    return backend.import_request(part, value, items, profile, data)


def _placeholders(path: str, backend: Backend) -> str:
    """The scheduler's output-name escapes as abcitrain's placeholders."""
    for old, new in backend.output_escapes:
        path = path.replace(old, new)
    return path


def _body(out: Imported, lines: list[str], start: int) -> None:
    """The script's commands: module lines, exports, setup steps, and the last command."""
    data = out.data
    steps: list[tuple[int, str]] = []
    for number, line in enumerate(lines[start:], start=start + 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if _MODULE_INIT.match(text):
            continue                     # abcitrain sources the profile's module_init
        if _cd_submit_dir(text):
            continue                     # abcitrain starts in the submit folder
        try:
            words = shlex.split(text, comments=True)
        except ValueError:
            out.drop(number, text, "unbalanced quotes")
            continue
        if not words:
            continue
        if words[0] == "module" and len(words) > 1 and not _SHELL_OPS.search(text):
            verb, args = words[1], words[2:]
            if verb in ("load", "add"):
                data.setdefault("modules", []).extend(args)
            elif verb == "use":
                data.setdefault("setup", {}).setdefault("module_use", []).extend(args)
            elif verb == "purge":
                data.setdefault("setup", {})["module_purge"] = True
            else:
                out.drop(number, text, f"module {verb}: no spec key")
            continue
        if words[0] == "export" and not _SHELL_OPS.search(text):
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                    data.setdefault("env", {})[key] = _job_vars(value)
                else:
                    out.drop(number, text, f"export {word}: not NAME=VALUE")
            continue
        if words[0] in ("source", ".") and len(words) == 2 and \
                words[1].endswith("/bin/activate"):
            data.setdefault("setup", {})["activate"] = words[1][:-len("/bin/activate")]
            continue
        if words[0] == "ulimit" and len(words) == 3 and re.fullmatch(r"-[a-z]", words[1]):
            limit = int(words[2]) if words[2].isdigit() else words[2]
            data.setdefault("setup", {}).setdefault("ulimit", {})[words[1][1]] = limit
            continue
        steps.append((number, text))
    if not steps:
        out.drop(0, "", "the script runs no command: set command in the spec")
        return
    *before, (_, last) = steps
    for _, text in before:
        data.setdefault("setup", {}).setdefault("run", []).append(_argv(text))
    data["command"] = _argv(last)


def _cd_submit_dir(line: str) -> bool:
    """True for ``cd $X`` where X is a scheduler's submit-folder variable (PBS_O_WORKDIR,
    SLURM_SUBMIT_DIR, SGE_O_WORKDIR, ...)."""
    m = re.fullmatch(r"cd\s+\"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?\"?\s*", line)
    return m is not None and any(m[1] == b.variables.submit_dir for b in all_backends())


def _argv(text: str) -> list[str]:
    """A command line as an argv: plain words as they are ($VAR -> ${VAR}, which the job's
    shell expands); anything using the shell (pipes, redirects, $(...)) runs under bash."""
    if _SHELL_OPS.search(text):
        return ["bash", "-c", text]
    return [_job_vars(w) for w in shlex.split(text, comments=True)]


def _job_vars(value: str) -> str:
    """$NAME and ${NAME} as abcitrain's ${NAME} (expanded by the job's shell)."""
    return _VAR.sub(lambda m: "${" + (m[1] or m[2]) + "}", value)


def to_mapping(imported: Imported) -> Mapping[str, Any]:
    """The spec in the order people read it."""
    order = ("name", "cluster", "resource", "nodes", "ranks_per_node", "threads_per_rank",
             "walltime", "group", "service",
             "reservation", "array", "depends_on", "dependency", "output", "workdir",
             "modules", "setup", "env", "command", "extra_directives")
    data = imported.data
    return {k: data[k] for k in order if k in data} | {k: v for k, v in data.items()
                                                        if k not in order}


def output_fits(data: Mapping[str, Any], profile: ClusterProfile) -> bool:
    """Whether ``profile``'s scheduler can write the spec's output path (PBS puts no job id
    into -o paths but PBS's own name in a folder)."""
    if not data.get("output"):
        return True
    from .spec import parse_spec

    try:
        spec = parse_spec(dict(data, cluster=profile.name, command=["true"]))[0]
    except InputError:
        return True             # other problems: the spec's own check names them
    return get_backend(profile.scheduler).output_problem(spec) is None
