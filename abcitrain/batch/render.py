"""Rendering: a job spec becomes a script and the exact submit command, with its checks.

``plan_job`` is pure: it returns a ``JobPlan`` that ``render`` prints and ``submit`` executes,
so a dry run shows exactly what a submission does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import jinja2

from .. import __version__
from ..backends import get_backend
from ..domain import ClusterProfile, JobSpec
from ..errors import Problem
from ..util.shellquote import quote, quote_expanding, quote_home, quote_path
from ..util.templatecache import bytecode_cache
from .checks import check_job, errors_in
from .directives import apply_user_changes, fill, request_templates, template_values
from .image import inside, runtime_of
from .sweep import env_of as sweep_env


def templates_dir() -> Path:
    """The templates: inside the package in a wheel, at the top of a checkout otherwise."""
    here = Path(__file__).resolve().parent.parent   # the package: abcitrain/batch/..
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "job.sh.j2").is_file():
            return candidate
    raise FileNotFoundError(f"abcitrain's templates are missing (looked in {here})")


@cache
def _environment(extra_dirs: tuple[str, ...] = ()) -> jinja2.Environment:
    # Shell scripts, not HTML: HTML escaping would corrupt them; values go through |q.
    # A backend's own folders come first (a third party's template may extend job.sh.j2).
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*extra_dirs, str(templates_dir())]),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
        lstrip_blocks=True, autoescape=False,  # noqa: S701
        bytecode_cache=bytecode_cache())
    env.filters["q"] = quote
    env.filters["qx"] = quote_expanding     # env values and command arguments: ${NAME}
    env.filters["qpath"] = quote_path       # folders of setup: ~ and ${NAME}
    env.filters["qhome"] = quote_home       # the working folder: ~ only
    env.globals["sweep_env"] = sweep_env
    return env


@dataclass(frozen=True)
class JobPlan:
    """Everything a submission will do: the script, its directives and the submit argv."""

    spec: JobSpec
    profile: ClusterProfile
    script: str
    directives: tuple[str, ...]
    submit_args: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        """Problems that stop the submission."""
        return errors_in(list(self.problems))

    def submit_argv(self, script_path: str) -> list[str]:
        """The exact command that submits the script stored at ``script_path``."""
        return get_backend(self.profile.scheduler).submit_argv(script_path, self.submit_args)


def _in_image(spec: JobSpec, profile: ClusterProfile) -> JobSpec:
    """The spec with its command run inside its image, the runtime's module loaded (a
    training job's: its ranks, or its whole launcher, by the container's pattern)."""
    assert spec.container is not None
    _, module, _ = runtime_of(profile)
    gpus = profile.resource_types[spec.resource].gpus
    command = inside(spec.command, spec.container, profile, gpus,
                     training=spec.train is not None)
    modules = spec.modules if not module or module in spec.modules else (*spec.modules,
                                                                          module)
    return replace(spec, command=command, modules=modules)


def plan_job(spec: JobSpec, profile: ClusterProfile) -> JobPlan:
    """Check and render ``spec`` for ``profile``'s scheduler."""
    backend = get_backend(profile.scheduler)
    if spec.threads_per_rank and "OMP_NUM_THREADS" not in spec.env:
        spec = replace(spec, env={**spec.env, "OMP_NUM_THREADS": str(spec.threads_per_rank)})
    if spec.container:
        spec = _in_image(spec, profile)
    problems = check_job(spec, profile)
    values = template_values(spec, profile, backend.walltime_text(spec.walltime_s))
    rendered = backend.header_directives(spec, profile)
    if spec.hold:
        if backend.hold_directive is None:
            problems.append(Problem("hold", f"the {profile.scheduler} scheduler cannot hold "
                                    "a job"))
        else:
            rendered.append(backend.hold_directive)
    rendered += fill(request_templates(spec, profile), values, "profile request", problems)
    submit_args: list[str] = []
    if spec.group:
        rendered += fill(profile.group_directives, values, "profile group.directives",
                         problems)
        submit_args = [t.format_map(values) for t in profile.group_submit_args]
    if spec.train is not None and spec.nodes > 1:
        # what the profile's launcher needs from the scheduler to reach the other nodes
        # (ABCI 2.0's pdsh: -l USE_SSH=1 -v SSH_PORT=...), asked for by the profile's data
        launcher = profile.data.get("launcher") or {}
        rendered += fill(launcher.get("request") or (), values, "profile launcher.request",
                         problems)
    rendered = backend.rank_layout(rendered, spec)
    directives = backend.combine(apply_user_changes(rendered, spec, problems, profile))
    problems += [Problem("extra_directives", text)
                 for text in backend.directive_problems(directives)]
    problems += backend.plan_problems(spec, profile, directives)
    rtype = profile.resource_types[spec.resource]
    # `cd -- -` still means "the previous folder" in bash; "./-" does not.
    # ~ is the job's $HOME (where PBS starts a job); anything else is a literal folder
    workdir = spec.workdir if spec.workdir is None or spec.workdir.startswith(("/", "~")) \
        else f"./{spec.workdir}"
    template = _environment(tuple(backend.template_dirs)).get_template(backend.template)
    script = template.render(
        spec=spec, profile=profile, rtype=rtype, directives=directives, workdir=workdir,
        prefix=backend.directive_prefix, version=__version__, module_init=profile.module_init)
    ordered = sorted(problems, key=lambda p: p.severity != "error")
    return JobPlan(spec, profile, script, tuple(directives), tuple(submit_args), tuple(ordered))
