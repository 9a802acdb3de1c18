"""``abcitrain import SCRIPT``: an existing qsub/sbatch script as a job spec."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from ..domain import ClusterProfile


@click.command("import")
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "--cluster", "cluster", metavar="CLUSTER",
              help="Write the spec for this cluster (default: the one the script was "
              "written for): resource types are matched, modules it lacks are named.")
@click.option("--from", "source", metavar="CLUSTER",
              help="The cluster the script was written for (default: the one its scheduler "
              "suggests: abci3 for PBS, abci2 for Grid Engine, slurm for Slurm).")
@click.option("--group", help="The group to charge (ABCI 2.0 scripts leave it to qsub -g).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the spec here (refused if the file exists) instead of printing it.")
def import_(script: Path, cluster: str | None, source: str | None, group: str | None,
            output: Path | None) -> None:
    """Read SCRIPT into a job spec that does what it did: the directives abcitrain
    understands exactly become spec keys, other directives stay directives, and every other
    line stays in script: verbatim. Each note names a line and says what will differ.

    \b
    Examples:
      abcitrain import train.sh -o train.yaml
      abcitrain import abci2-job.sh --to abci3 -o job.yaml
    """
    from ..batch.importer import default_cluster, read_script, scheduler_of, to_mapping
    from ..batch.render import plan_job
    from ..batch.spec import parse_spec
    from ..errors import InputError, Problem
    from ..profiles import load_profile
    from ..service.syntax import body_problems
    from ..util.durations import format_hms

    text = _read(script)
    scheduler = scheduler_of(text)
    if scheduler is None:
        from ..backends import all_backends

        prefixes = ", ".join(b.directive_prefix for b in all_backends())
        raise InputError(f"{script} is not a job script abcitrain can read", [Problem(
            str(script), f"no directive line of a known scheduler ({prefixes})")])
    target = load_profile(cluster) if cluster else None
    if source:
        origin = load_profile(source)
    elif target is not None and target.scheduler == scheduler:
        origin = target
    else:
        fallback = default_cluster(scheduler)
        if fallback is None:
            raise InputError(f"which cluster was {script} written for?", [Problem(
                "--from", f"name the {scheduler} cluster profile the script was written for")])
        origin = load_profile(fallback)
    # what the scheduler names a job without a name option: the script's file name (made a
    # valid job name where it is not one); -N in the script wins
    name = re.sub(r"[^A-Za-z0-9_.+-]", "-", script.name)[:63].strip("-.+") or "imported"
    imported = read_script(text, origin, name)
    if imported.refused:
        raise InputError(f"{script} cannot be imported as it is", imported.refused)
    data = dict(to_mapping(imported))
    if group:
        data["group"] = group
    notes = [(n.line, n.text, n.differs) for n in imported.notes]
    if target is not None and target.name != origin.name:
        data, moved = move_to(data, origin, target, imported.body_lines)
        notes += moved
    if isinstance(data.get("walltime"), int):
        data["walltime"] = format_hms(data["walltime"])
    problems: list[Problem] = []
    try:
        data, same = _without_repeats(data)
        notes += same
        plan = plan_job(*parse_spec(data, source=f"the spec read from {script}"))
        problems = [*body_problems(str(data["script"])), *plan.problems]
    except InputError as exc:
        problems = list(exc.problems)
    spec_text = _dump(data)
    if output is None:
        click.echo(spec_text, nl=False)
    elif output.exists():
        raise InputError("will not overwrite", [Problem(str(output), "exists")])
    else:
        output.write_text(spec_text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    for line, note, differs in sorted(notes, key=lambda n: n[0]):
        where = f"line {line}: " if line else ""
        click.echo(f"{'differs' if differs else 'note'}: {where}{note}", err=True)
    differ = sum(1 for n in notes if n[2])
    click.echo("faithful: the imported job runs the script's own lines, as its scheduler "
               "would" if not differ else
               f"differs at {differ} place{'s' if differ != 1 else ''} (above): check "
               "them before submitting", err=True)
    for p in problems:
        click.echo(f"{p.severity}: {p}", err=True)
    if any(p.severity == "error" for p in problems):
        click.echo("the spec was written as read, but cannot be submitted until the errors "
                   "above are fixed", err=True)
        sys.exit(2)


def _dump(data: dict[str, Any]) -> str:
    """The spec as YAML, the body as a literal block (``script: |``) where YAML allows."""

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, text)
    dumped: str = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                            width=100)
    return dumped


def _without_repeats(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[int, str, bool]]]:
    """The spec without extra directives that abcitrain writes anyway, the same (a script's
    own --exclusive where the resource type asks for it too)."""
    from ..batch.render import plan_job
    from ..batch.spec import parse_spec
    from ..errors import InputError

    extras = list(data.get("extra_directives") or [])
    if not extras:
        return data, []
    bare = {k: v for k, v in data.items() if k != "extra_directives"}
    try:
        written = plan_job(*parse_spec(bare)).directives
    except InputError:
        return data, []
    same = [e for e in extras if e in written]
    rest = [e for e in extras if e not in same]
    out = bare | ({"extra_directives": rest} if rest else {})
    return out, [(0, f"{e!r}: abcitrain writes it too, for this resource type", False)
                 for e in same]


def _read(path: Path) -> str:
    from ..errors import InputError, Problem

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}", [Problem(str(path), str(exc)[:200])]) from None


def move_to(data: dict[str, Any], origin: ClusterProfile, target: ClusterProfile,
            body_lines: Sequence[int] = ()) -> tuple[dict[str, Any], list[tuple[int, str, bool]]]:
    """The spec moved to another cluster: the resource type matched by GPUs per node, what
    only the old scheduler understood left out, each module the target does not list and
    each of the old scheduler's variables the body reads named (line by line), and the
    price per node-hour compared. Notes are (line, text, differs), lines the script's own
    (``body_lines``: the script's line of each line of the body)."""

    def line_of(body_line: int) -> int:
        return body_lines[body_line - 1] if 0 < body_line <= len(body_lines) else body_line

    from ..backends import get_backend
    from ..backends.base import log_file_name
    from ..batch.importer import module_names, output_fits

    out = dict(data, cluster=target.name)
    notes: list[tuple[int, str, bool]] = []
    old = origin.resource_types.get(str(data.get("resource")))
    if old is not None:
        same_kind = [t for t in target.resource_types.values() if t.exclusive == old.exclusive]
        bigger = sorted((t for t in same_kind if t.gpus >= old.gpus), key=lambda t: t.gpus)
        new = bigger[0] if bigger else max(same_kind or target.resource_types.values(),
                                           key=lambda t: t.gpus)
        out["resource"] = new.name
        notes.append((0, f"resource {old.name} ({old.gpus} x {old.gpu_model or 'CPU'} per "
                      f"node) -> {new.name} ({new.gpus} x {new.gpu_model or 'CPU'} per node): "
                      "check nodes and batch sizes", True))
        notes += [(0, n, False) for n in _price_note(origin, old.name, target, new.name)]
    before, after = get_backend(origin.scheduler), get_backend(target.scheduler)
    if origin.scheduler != target.scheduler:
        for extra in out.pop("extra_directives", []):
            notes.append((0, f"left out {extra!r}: a {origin.scheduler} directive; say it in "
                          f"{target.scheduler}'s terms if the job still needs it", True))
        out.pop("drop_directives", None)
        if out.get("error") == "./" and not any(d.startswith("-j")
                                                for d in after.written_anyway):
            out["error"] = log_file_name("error", bool(out.get("array")))
        if not after.output_folder_allowed:
            # a folder (-o logs/) held the old scheduler's own file name: where the new
            # one needs a file, one in the same folder, named NAME.oJOBID
            for key in ("output", "error"):
                value = out.get(key)
                if isinstance(value, str) and value.endswith("/"):
                    out[key] = value + log_file_name(key, bool(out.get("array")))
                    notes.append((0, f"{key} {value!r} -> {out[key]!r}: {target.scheduler} "
                                  "writes to a file, not into a folder", True))
    if (out.get("output") or out.get("error")) and not output_fits(out, target):
        for key in ("output", "error"):
            if out.get(key):
                notes.append((0, f"left out {key} {out.pop(key)!r}: {target.scheduler} "
                              "cannot write it; its own default name is used", True))
    for key in ("depends_on", "dependency", "reservation"):
        if key in out:
            notes.append((0, f"left out {key}: {out.pop(key)!r} belongs to {origin.name}",
                          True))
    script = str(out.get("script") or "")
    known = [str(m) for m in target.data.get("modules") or []]
    if known:
        families = {m.split("/")[0] for m in known}
        for line, module in module_names(script):
            if module not in known and not (module in families and "/" not in module):
                similar = [m for m in known if m.split("/")[0] == module.split("/")[0]]
                notes.append((line_of(line), f"module {module} is not one {target.name} lists"
                              + (f" (it has {', '.join(similar)})" if similar else ""), True))
    if origin.scheduler != target.scheduler:
        v = before.variables
        theirs = [v.job_id, v.array_index, v.submit_dir, *v.node_files,
                  *(x for x in (v.host_list, v.local_scratch) if x)]
        for line_no, text in enumerate(script.splitlines(), start=1):
            for var in theirs:
                if re.search(rf"\$\{{?{var}\b", text):
                    notes.append((line_of(line_no), f"${var} is {origin.scheduler}'s and is not "
                                  f"set on {target.name}; abcitrain sets ABCITRAIN_* on "
                                  "every cluster (README: the job's environment)", True))
    return out, notes


def _price_note(origin: ClusterProfile, old: str, target: ClusterProfile,
                new: str) -> list[str]:
    from ..errors import InputError
    from ..points.tariffs import quote

    today = dt.date.today()
    when = min(today, origin.data.get("retired") or today)
    try:
        before = quote(origin, old, origin.default_service, when)
        after = quote(target, new, target.default_service, today)
    except InputError:
        return []
    per_hour = [q.service_coeff * q.type_rate for q in (before, after)]
    return [f"price: {per_hour[0]} points per node-hour on {origin.name} ({when}), "
            f"{per_hour[1]} on {target.name} ({today})"]
