"""``abcitrain import SCRIPT``: an existing qsub/sbatch script as a job spec."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from ..domain import ClusterProfile


@click.command("import")
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cluster", help="Write the spec for this cluster (default: the one the "
              "script's scheduler suggests: abci3 for PBS, abci2 for Grid Engine, slurm).")
@click.option("--from", "source", metavar="CLUSTER",
              help="The cluster the script was written for (default: as for --cluster).")
@click.option("--group", help="The group to charge (ABCI 2.0 scripts leave it to qsub -g).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the spec here (refused if the file exists) instead of printing it.")
def import_(script: Path, cluster: str | None, source: str | None, group: str | None,
            output: Path | None) -> None:
    """Read SCRIPT's directives, module loads, exported variables and commands into a job
    spec; list every line that could not come along, and why."""
    from ..batch.importer import default_cluster, read_script, scheduler_of, to_mapping
    from ..batch.render import plan_job
    from ..batch.spec import parse_spec
    from ..errors import InputError, Problem
    from ..profiles import load_profile
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
    # the file's name, made a valid job name (letters or _ somewhere; -N in the script wins)
    name = re.sub(r"[^A-Za-z0-9_.+-]", "-", script.stem)[:58]
    if not re.match(r"[A-Za-z0-9]", name) or not re.search(r"[A-Za-z_]", name):
        name = f"job-{name}".rstrip("-")
    imported = read_script(text, origin, name)
    data = dict(to_mapping(imported))
    if group:
        data["group"] = group
    notes: list[str] = []
    if target is not None and target.name != origin.name:
        data, notes = move_to(data, origin, target)
    if isinstance(data.get("walltime"), int):
        data["walltime"] = format_hms(data["walltime"])
    for number, line, why in imported.dropped:
        where = f"line {number}: " if number else ""
        click.echo(f"not carried: {where}{line!r}: {why}" if line else f"not carried: {why}",
                   err=True)
    for note in notes:
        click.echo(f"changed: {note}", err=True)
    spec_text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    try:
        plan = plan_job(*parse_spec(data, source=f"the spec read from {script}"))
    except InputError as exc:
        click.echo(spec_text, nl=False)
        raise InputError(f"the spec read from {script} needs editing", exc.problems) from None
    for p in plan.problems:
        click.echo(f"{p.severity}: {p}", err=True)
    if output is None:
        click.echo(spec_text, nl=False)
    elif output.exists():
        raise InputError("will not overwrite", [Problem(str(output), "exists")])
    else:
        output.write_text(spec_text)
        click.echo(f"wrote {output}", err=True)
    if plan.errors:
        sys.exit(2)


def _read(path: Path) -> str:
    from ..errors import InputError, Problem

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}", [Problem(str(path), str(exc)[:200])]) from None


def move_to(data: dict[str, Any], origin: ClusterProfile,
            target: ClusterProfile) -> tuple[dict[str, Any], list[str]]:
    """The spec moved to another cluster: the resource type matched by GPUs per node, what
    only the old scheduler understood left out, and the price per node-hour compared."""
    out = dict(data, cluster=target.name)
    notes = []
    old = origin.resource_types.get(str(data.get("resource")))
    if old is not None:
        same_kind = [t for t in target.resource_types.values() if t.exclusive == old.exclusive]
        bigger = sorted((t for t in same_kind if t.gpus >= old.gpus), key=lambda t: t.gpus)
        new = bigger[0] if bigger else max(same_kind or target.resource_types.values(),
                                           key=lambda t: t.gpus)
        out["resource"] = new.name
        notes.append(f"resource {old.name} ({old.gpus} x {old.gpu_model or 'CPU'} per node) "
                     f"-> {new.name} ({new.gpus} x {new.gpu_model or 'CPU'} per node): check "
                     "nodes and batch sizes")
        notes += _price_note(origin, old.name, target, new.name)
    if origin.scheduler != target.scheduler:
        for extra in out.pop("extra_directives", []):
            notes.append(f"left out {extra!r}: a {origin.scheduler} directive; say it in "
                         f"{target.scheduler}'s terms if the job still needs it")
    if out.get("output"):
        from ..batch.importer import output_fits

        if not output_fits(out, target):
            notes.append(f"left out output {out.pop('output')!r}: PBS writes no job id into "
                         "-o paths; PBS's own NAME.oSEQUENCE is used")
    for key in ("depends_on", "dependency", "reservation"):
        if key in out:
            notes.append(f"left out {key}: {out.pop(key)!r} belongs to {origin.name}")
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
