"""An existing qsub/sbatch script becomes a job spec that does what the script did.

Pure: text in, a spec mapping and notes out. The directives are read the way the scheduler
reads them, up to the first command (its backend says the prefix, which options set which
spec fields, and how it spells walltime, nodes and resource types). Only what is understood
exactly becomes a spec field (name, walltime, resource, nodes, group, array and its ``%``
limit, dependencies, reservation, output and error files, chunk resources); every other
directive stays a directive (``extra_directives``), and every other line of the script,
shell and comments alike, stays in ``script:`` byte for byte and in order. Nothing is split,
joined, reordered or rewritten. Each note names its line and says whether the imported job
will behave differently there; a line that cannot be imported at all is a refusal.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..backends import Backend, backend_by_prefix, get_backend
from ..backends.base import log_file_name
from ..domain import ClusterProfile
from ..errors import InputError, Problem
from .spec import DIRECTIVE_RE, NAME_RE, OUTPUT_RE

#: Chunk resources of a PBS select that map onto spec fields; any other keeps the select.
_LAYOUT = {"mpiprocs": "ranks_per_node", "ompthreads": "threads_per_rank"}
#: Shells that read a script as bash does (sh scripts run under bash in POSIX-ish ways).
_BASH_LIKE = re.compile(r"#!\s*(/usr)?/bin/(env\s+)?(ba)?sh\s*$")


@dataclass(frozen=True)
class Note:
    """What happened to one line of the script (``line`` 0: the script as a whole)."""

    line: int
    text: str
    #: True when the imported job will behave differently from the script here.
    differs: bool = False


@dataclass
class Imported:
    """A script read into a spec: the spec's data, the notes, and the refused lines."""

    scheduler: str
    data: dict[str, Any]
    notes: list[Note] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)
    #: The script's line number of each line of ``script:`` (notes name the script's lines).
    body_lines: list[int] = field(default_factory=list)

    def note(self, line: int, text: str, differs: bool = False) -> None:
        """Record what happened at ``line``."""
        self.notes.append(Note(line, text, differs))

    def refuse(self, line: int, why: str) -> None:
        """Record a line that cannot be imported (the import exits 2 naming it)."""
        self.refused.append(Problem(f"line {line}" if line else "script", why))

    @property
    def faithful(self) -> bool:
        """True when no note says the imported job will behave differently."""
        return not any(n.differs for n in self.notes)


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


def _directive_text(line: str, prefix: str) -> str | None:
    """The options of a directive line (``#PBS -l x``, ``#$-cwd``), or None if it is none."""
    if not line.startswith(prefix):
        return None
    rest = line[len(prefix):]
    if rest[:1] in (" ", "\t", "-"):
        return rest.strip()
    return None


def read_script(text: str, profile: ClusterProfile, name: str = "imported") -> Imported:
    """Read ``text`` (a job script for ``profile``'s scheduler) into a spec mapping."""
    backend = get_backend(profile.scheduler)
    prefix = backend.directive_prefix
    out = Imported(backend.name, {"name": name, "cluster": profile.name})
    state = _Reading(backend, profile, out)
    body: list[str] = []
    in_header = True
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        bare = line.rstrip("\r\n")
        if number == 1 and bare.startswith("#!"):
            _shebang(out, bare)
            continue
        options = _directive_text(bare, prefix)
        if in_header and options is not None:
            state.directive(number, options)
            continue
        if in_header and (not bare.strip() or bare.lstrip().startswith("#")):
            body.append(line)                    # a comment among the directives: kept
            out.body_lines.append(number)
            continue
        in_header = False
        if options is not None:
            out.note(number, f"{prefix} after the first command: {backend.name} does not "
                     "read it, and the imported job keeps it as the comment it was")
        body.append(line)
        out.body_lines.append(number)
    state.finish()
    script = "".join(body)
    if not any(ln.strip() and not ln.lstrip().startswith("#")
               for ln in script.splitlines()):
        out.refuse(0, "the script runs no command: there is nothing to import")
    out.data["script"] = script
    return out


def _shebang(out: Imported, line: str) -> None:
    if _BASH_LIKE.match(line):
        return
    if re.match(r"#!\s*(/usr)?/bin/(env\s+)?bash\s+(-l|--login)\b", line):
        out.note(1, f"{line!r}: a login shell; the imported job runs under bash, not as a "
                 "login: ~/.bash_profile is not read (source what it sets in the script)",
                 differs=True)
        return
    out.note(1, f"{line!r}: the imported job runs under bash", differs=True)


class _Reading:
    """The directive lines of one script, read option by option."""

    def __init__(self, backend: Backend, profile: ClusterProfile, out: Imported) -> None:
        self.backend, self.profile, self.out = backend, profile, out
        self.joined: bool | None = None           # -j oe / -j y seen (or -j n)
        self.error_set = False
        self.had_cwd = False
        self.variables: list[tuple[int, str]] = []

    def directive(self, number: int, options: str) -> None:
        out = self.out
        if options.rstrip().endswith("\\"):
            out.refuse(number, f"the line continues (ends with \\): {self.backend.name} reads "
                       "each directive line on its own; put its options on one line")
            return
        try:
            words = shlex.split(options, comments=True)
        except ValueError as exc:
            out.refuse(number, f"{options!r}: {exc} (unbalanced quotes)")
            return
        parts: list[list[str]] = []
        for word in words:
            if word.startswith("-") or not parts:
                parts.append([word])
            else:
                parts[-1].append(word)
        for part in parts:
            quoted = any(any(c.isspace() for c in w) for w in part)
            for one in self.items(" ".join(part)):
                self.option(number, one, quoted)

    def items(self, part: str) -> list[str]:
        """A list option (``-l a=1,b=2``) as one option per item, each read on its own."""
        opt, _, value = part.partition(" ")
        if opt in self.backend.options.lists and "," in value and " " not in value:
            return [f"{opt} {item}" for item in value.split(",") if item]
        return [part]

    def option(self, number: int, part: str, quoted: bool) -> None:
        out, backend = self.out, self.backend
        if part in backend.written_anyway:
            if part.startswith("-j"):
                self.joined = True
            elif part == "-cwd":
                self.had_cwd = True
            return
        if re.fullmatch(r"-j\s*n", part):
            self.joined = False
            return
        owned = {f for f, _ in backend.owned_fields(part, tuple(self.profile.resource_types))}
        if not owned:
            if part.startswith("-v "):
                rest = backend.lift_variables(part, out.data)
                if rest:
                    self.variables.append((number, rest))
                return
            if quoted or not re.fullmatch(DIRECTIVE_RE, part):
                out.note(number, f"{part!r} is not carried: a directive abcitrain writes holds "
                         "plain words only (no quotes, spaces or $ in values); the imported "
                         "job runs without it", differs=True)
                return
            out.data.setdefault("extra_directives", []).append(part)
            return
        why = _owned_to_spec(self, number, part, owned)
        if why:
            out.refuse(number, f"{part!r} sets {', '.join(sorted(owned))} {why}")

    def finish(self) -> None:
        out, data = self.out, self.out.data
        if len(self.variables) > 1:
            (first, _), (last, kept) = self.variables[0], self.variables[-1]
            lines = ", ".join(str(n) for n, _ in self.variables)
            out.note(last, f"lines {lines} each give -v: {self.backend.name} keeps only the "
                     f"last list (line {last}), so the variables of line {first} were never "
                     "set; the imported job keeps the same (merge them into one -v if you "
                     "meant both)")
            self.variables = [(last, kept)]
        for _, rest in self.variables:
            data.setdefault("extra_directives", []).append(rest)
        if not self.joined and not self.error_set and self.backend.written_anyway and \
                any(d.startswith("-j") for d in self.backend.written_anyway):
            # the scheduler's own default: stderr in a file of its own, NAME.eID in the
            # submit folder (and .INDEX for an array's task), which each backend writes
            # as its scheduler's default (PBS: no -e at all; a folder would be JOBID.ER)
            data["error"] = log_file_name("error", bool(data.get("array")))
        if self.backend.job_starts_in_home and not self.had_cwd and "workdir" not in data:
            data["workdir"] = "~"        # the scheduler started the script in $HOME


def _owned_to_spec(reading: _Reading, number: int, part: str, fields: set[str]) -> str:
    """Put what ``part`` sets into the spec; the reason ("" when understood) otherwise."""
    out = reading.out
    data, value = out.data, _value(part)
    if fields == {"name"}:
        if not re.fullmatch(NAME_RE, value):
            return "to a name abcitrain cannot write (letters, digits, _ . + - only)"
        data["name"] = value
    elif fields == {"array"}:
        if part.startswith("-tc"):
            data["max_concurrent"] = int(value) if value.isdigit() else value
            return "" if value.isdigit() else "to a limit that is not a number"
        m = re.fullmatch(r"(\d+)(?:-(\d+))?(?::(\d+))?(?:%(\d+))?", value)
        if not m:
            return "in a form abcitrain does not read (START-END[:STEP][%LIMIT])"
        start, end, step, limit = m.groups()
        data["array"] = f"{start}-{end or start}" + (f":{step}" if step else "")
        if limit:
            data["max_concurrent"] = int(limit)
    elif fields == {"output"}:
        return _output_or_error(reading, number, part, value)
    elif fields == {"group"}:
        data["group"] = value
    elif fields == {"dependency"}:
        m = re.fullmatch(r"(?:depend=)?(afterok|afterany):([^,]+)", value)
        if m:
            data["dependency"] = m[1]
            data["depends_on"] = [j.split("@")[0] for j in m[2].split(":") if j]
        elif part.startswith("-hold_jid"):
            # Grid Engine starts the job when the others end, whatever their status
            data["dependency"] = "afterany"
            data["depends_on"] = value.split(",")
        else:
            return "in a form abcitrain does not read (afterok:ID[:ID] or afterany:ID)"
    elif fields == {"reservation"}:
        data["reservation"] = value
    elif fields == {"workdir"}:
        data["workdir"] = value
    elif fields <= {"walltime", "nodes", "resource"}:
        return _request(reading, part, value)
    else:
        return "in a form abcitrain does not read"
    return ""


def _output_or_error(reading: _Reading, number: int, part: str, value: str) -> str:
    data, backend = reading.out.data, reading.backend
    if part.startswith("-j"):
        if value in ("oe", "y", "yes"):
            reading.joined = True
            return ""
        return "to join the files a way abcitrain does not write (only -j oe / -j y)"
    path = _placeholders(value, backend)
    if not re.fullmatch(OUTPUT_RE, path) or path.startswith("-"):
        return (f"to a path abcitrain cannot write ({path!r}: letters, digits and _ . / + - "
                "with {name}, {job_id}, {array_index}; the scheduler expands no $VARIABLE "
                "there either)")
    error = part.startswith(("-e", "--error"))
    if error:
        reading.error_set = True
        data["error"] = path
    else:
        data["output"] = path
    return ""


def _value(part: str) -> str:
    """The value of ``-o VALUE``, ``--opt=VALUE`` or ``-oVALUE``."""
    if part.startswith("--"):
        return part.split("=", 1)[1] if "=" in part else part.split(None, 1)[-1]
    head, _, rest = part.partition(" ")
    return rest.strip() if rest else head[2:]


def _request(reading: _Reading, part: str, value: str) -> str:
    """Walltime, nodes and resource type, from the scheduler's spelling."""
    backend, profile, data = reading.backend, reading.profile, reading.out.data
    items = dict(re.findall(r"([A-Za-z_.]+)=([^,]+)", value))
    if "walltime" in items or "h_rt" in items or part.startswith(("-t", "--time")):
        text = items.get("walltime") or items.get("h_rt") or value
        try:
            data["walltime"] = backend.parse_walltime(text)
        except ValueError:
            return f"to a walltime abcitrain does not read ({text!r})"
        items = {k: v for k, v in items.items() if k not in ("walltime", "h_rt")}
        if not items:
            return ""
    if "select" in items and set(items) == {"select"}:
        return _select(reading, items["select"])
    if backend.import_request(part, value, items, profile, data):
        return ""
    return (f"in a form abcitrain does not read for {profile.name} (its resource types: "
            f"{', '.join(profile.resource_types)}): import it for the cluster it was "
            "written for (--from, with a profile of your own if abcitrain has none)")


def _select(reading: _Reading, select: str) -> str:
    """A PBS select: the chunk count is the spec's nodes; MPI layout keys become
    ranks_per_node / threads_per_rank; any other chunk resource (ncpus, ngpus, mem) keeps
    the whole select as written, in place of the one abcitrain would write."""
    data = reading.out.data
    count, *chunk = select.split(":")
    if not count.isdigit() or "+" in select:
        return "in a form abcitrain does not read (one kind of chunk: select=N:...)"
    data["nodes"] = int(count)
    layout = dict(c.split("=", 1) for c in chunk if "=" in c)
    if all(k in _LAYOUT and v.isdigit() for k, v in layout.items()) and \
            len(layout) == len(chunk):
        for key, spec_key in _LAYOUT.items():
            if key in layout:
                data[spec_key] = int(layout[key])
        return ""
    data.setdefault("extra_directives", []).append(f"-l select={select}")
    data.setdefault("drop_directives", []).append("-l select")
    return ""


def _placeholders(path: str, backend: Backend) -> str:
    """The scheduler's output-name escapes as abcitrain's placeholders."""
    for old, new in backend.output_escapes:
        path = path.replace(old, new)
    return path


def module_names(script: str) -> list[tuple[int, str]]:
    """(line, module) for every ``module load|add NAME ...`` line of a script, as written:
    read to warn about modules another cluster lacks, never to rewrite them."""
    found = []
    for number, line in enumerate(script.splitlines(), start=1):
        m = re.match(r"\s*module\s+(?:load|add)\s+([^;&|#]*)", line)
        if m:
            found += [(number, w) for w in m[1].split() if not w.startswith("-")
                      and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+/-]*", w)]
    return found


def to_mapping(imported: Imported) -> Mapping[str, Any]:
    """The spec in the order people read it, the body last."""
    order = ("name", "cluster", "resource", "nodes", "ranks_per_node", "threads_per_rank",
             "walltime", "group", "service", "reservation", "array", "max_concurrent",
             "depends_on", "dependency", "output", "error", "workdir", "extra_directives",
             "drop_directives", "script")
    data = imported.data
    return {k: data[k] for k in order if k in data} | {k: v for k, v in data.items()
                                                        if k not in order}


def output_fits(data: Mapping[str, Any], profile: ClusterProfile) -> bool:
    """Whether ``profile``'s scheduler can write the spec's output path (PBS puts no job id
    into -o paths but PBS's own name in a folder)."""
    if not data.get("output") and not data.get("error"):
        return True
    from .spec import parse_spec

    try:
        spec = parse_spec(dict(data, cluster=profile.name))[0]
    except InputError:
        return True             # other problems: the spec's own check names them
    return get_backend(profile.scheduler).output_problem(spec) is None

