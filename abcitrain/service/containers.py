"""Container images as jobs: a spec's definition rendered and checked, and the build run on
a compute node (login nodes are too weak), through the same checks, price and ledger as
any job."""

from __future__ import annotations

from pathlib import Path

from ..batch.image import runtime_of
from ..batch.render import JobPlan
from ..container.lint import lint, spython_problems
from ..container.render import render_definition
from ..container.spec import ContainerSpec
from ..errors import InputError, Problem
from ..profiles import load_profile
from .plans import plan_mapping

#: Where rendered definitions go, in the project.
CONTAINERS_DIR = Path("containers")


def checked_definition(spec: ContainerSpec) -> tuple[str, list[Problem]]:
    """The spec's definition and its warnings; InputError (exit 2) when the lint or
    spython's reading of it finds an error."""
    text = render_definition(spec)
    problems = lint(text) + spython_problems(text, spec)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise InputError(f"the definition of {spec.name} does not check", errors)
    return text, [p for p in problems if p.severity != "error"]


def build_plan(spec: ContainerSpec, definition: str, cluster: str, resource: str,
               walltime: str, group: str | None = None, image: str | None = None) -> JobPlan:
    """The job that builds ``definition`` into IMAGE.sif on a compute node: ``--fakeroot``
    and the runtime's temporary folder on the node-local disk (SINGULARITY_TMPDIR and
    APPTAINER_TMPDIR), the runtime's module loaded first."""
    runtime, module, _ = runtime_of(load_profile(cluster))
    scratch = "${ABCITRAIN_LOCALDIR}/abcitrain-build-${ABCITRAIN_JOB_ID}"
    job: dict[str, object] = {
        "name": f"build-{spec.name}", "cluster": cluster, "resource": resource,
        "walltime": walltime, "modules": [module] if module else [],
        "env": {"SINGULARITY_TMPDIR": scratch, "APPTAINER_TMPDIR": scratch},
        "setup": {"run": [["mkdir", "-p", scratch]]},
        "command": [runtime, "build", "--fakeroot", image or f"{spec.name}.sif", definition]}
    if group:
        job["group"] = group
    return plan_mapping(job)
