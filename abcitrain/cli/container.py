"""``abcitrain container render | lint | build``: definition files from container specs,
checked before anything is built, and the build as a job on a compute node."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from .output import echo_problems


@click.group()
def container() -> None:
    """Singularity/Apptainer images from container specs."""


@container.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the definition (default: containers/NAME.def).")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print it instead of writing it.")
def render(spec: Path, output: Path | None, to_stdout: bool) -> None:
    """Render SPEC's definition file, checked by the lint and spython's parser."""
    from ..container.spec import load_container
    from ..service.containers import CONTAINERS_DIR, checked_definition

    cspec = load_container(spec)
    text, warnings = checked_definition(cspec)
    echo_problems(warnings)
    if to_stdout:
        click.echo(text, nl=False)
        return
    path = output or CONTAINERS_DIR / f"{cspec.name}.def"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    click.echo(f"wrote {path} (image {cspec.name}; its recipe is in the labels)")


@container.command()
@click.argument("definition", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def lint(definition: Path) -> None:
    """Check any definition file: missing sections, relative %files destinations, unpinned
    pip packages, unquoted %environment values (exit 2 on an error)."""
    from ..container.lint import lint as run_lint
    from ..errors import InputError

    problems = run_lint(definition.read_text(encoding="utf-8", errors="replace"))
    errors = [p for p in problems if p.severity == "error"]
    echo_problems([p for p in problems if p.severity != "error"])
    if errors:
        raise InputError(f"{definition} has problems", errors)
    click.echo(f"ok: {definition}")


@container.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cluster", required=True, help="Where to build (a profile).")
@click.option("--resource", required=True, help="The resource type of the build job.")
@click.option("--group", help="The group charged (ABCI).")
@click.option("--walltime", default="1:00:00", show_default=True,
              help="The build job's walltime (HH:MM:SS).")
@click.option("--image", help="The image file (default: NAME.sif in the submit folder).")
@click.option("--dry-run", is_flag=True, help="Print the build job; write and submit nothing.")
def build(spec: Path, cluster: str, resource: str, group: str | None, walltime: str,
          image: str | None, dry_run: bool) -> None:
    """Render SPEC's definition and build the image as a job on a compute node."""
    from ..batch.store import JobStore
    from ..container.spec import load_container
    from ..service import submitting
    from ..service.containers import CONTAINERS_DIR, build_plan, checked_definition

    cspec = load_container(spec)
    text, warnings = checked_definition(cspec)
    echo_problems(warnings)
    definition = CONTAINERS_DIR / f"{cspec.name}.def"
    plan = build_plan(cspec, str(definition), cluster, resource, walltime, group, image)
    submitting.require_submittable(plan)
    echo_problems(plan.problems)
    if dry_run:
        sub = submitting.submit(plan, None, dry_run=True)
        click.echo(plan.script, nl=False)
        click.echo(f"# dry run: {definition} was not written, nothing was submitted.\n"
                   f"# command: {shlex.join(sub.argv)}")
        return
    definition.parent.mkdir(parents=True, exist_ok=True)
    definition.write_text(text)
    sub = submitting.submit(plan, JobStore())
    click.echo(f"wrote {definition}; submitted {plan.profile.name} job {sub.job_id} "
               f"(build-{cspec.name})")
