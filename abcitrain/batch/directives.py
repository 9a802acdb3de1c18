"""Directive lines: fill the profile's templates, apply the user's drops and additions.

Directive lines are parsed by the scheduler, not by bash, so quoting cannot protect them:
every value is validated against an allow-list instead, and a user's addition that would
clash with a directive abcitrain writes is refused (PBS reads the first ``select``, so order
cannot be relied on to settle it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from ..backends import get_backend
from ..domain import ClusterProfile, JobSpec
from ..errors import Problem
from .owned import owned_problem
from .spec import DIRECTIVE_RE

_DIRECTIVE = re.compile(DIRECTIVE_RE)
_OPTION = re.compile(r"(--?[A-Za-z][A-Za-z0-9_-]*)(?:[ =](.*))?$")
_NAME_VALUE_OPTIONS = {"-l", "-v", "-W"}


def keys(directive: str) -> set[str]:
    """What a directive sets: its option, plus resource names for -l/-v/-W lists."""
    m = _OPTION.match(directive)
    opt, value = (m.group(1), m.group(2) or "") if m else (directive, "")
    if opt in _NAME_VALUE_OPTIONS and value:
        return {f"{opt} {part.split('=')[0]}" for part in value.split(",") if part}
    return {opt}


def template_values(spec: JobSpec, profile: ClusterProfile, walltime: str) -> dict[str, str]:
    """The values the profile's templates may use; all come from validated fields."""
    rtype = profile.resource_types[spec.resource]
    values = {
        "type": spec.resource, "nodes": str(spec.nodes), "gpus": str(rtype.gpus),
        "cpus": str(rtype.cpus), "gpus_total": str(rtype.gpus * spec.nodes),
        "walltime": walltime,
    }
    if spec.group:
        values["group"] = spec.group
    if spec.reservation:
        values["reservation"] = spec.reservation
        values["reservation_queue"] = spec.reservation.split(".")[0]
    return values


def fill(templates: Iterable[str], values: Mapping[str, str], where: str,
         problems: list[Problem]) -> list[str]:
    """Fill templates; a missing value or a result off the allow-list becomes a problem."""
    out = []
    for template in templates:
        try:
            text = template.format_map(values)
        except KeyError as exc:
            problems.append(Problem(where, f"template {template!r} needs {exc.args[0]}, which "
                                    "this job does not set"))
            continue
        if not _DIRECTIVE.fullmatch(text):
            problems.append(Problem(where, f"{text!r} (from template {template!r}) is not a "
                                    "safe directive"))
            continue
        out.append(text)
    return out


def request_templates(spec: JobSpec, profile: ClusterProfile) -> tuple[str, ...]:
    """The resource request for this job: the type's or profile's, adjusted for a reservation."""
    rtype = profile.resource_types[spec.resource]
    base = rtype.request if rtype.request is not None else profile.request
    if not spec.reservation:
        return base
    if profile.reservation_replaces_request:
        return profile.reservation_request
    return (*base, *profile.reservation_request)


def apply_user_changes(rendered: Sequence[str], spec: JobSpec, problems: list[Problem],
                       profile: ClusterProfile | None = None) -> list[str]:
    """Drop what the user drops, then add the user's extras, refusing clashes and any extra
    that sets a field abcitrain owns (walltime, nodes, array, ...: ``owned``), in whatever
    spelling the profile's scheduler accepts."""
    kept = []
    used_drops = set()
    for d in rendered:
        m = _OPTION.match(d)
        names = keys(d) | ({m.group(1)} if m else set())
        hit = [drop for drop in spec.drop_directives if drop in names or drop == d]
        if hit:
            used_drops.update(hit)
            continue
        kept.append(d)
    for drop in spec.drop_directives:
        if drop not in used_drops:
            problems.append(Problem("drop_directives", f"{drop!r} matches no directive; "
                                    f"the directives are: {'; '.join(rendered)}", "warning"))
    taken = {k: d for d in kept for k in keys(d)}
    for i, extra in enumerate(spec.extra_directives):
        why = owned_problem(extra, get_backend(profile.scheduler), profile.resource_types,
                            spec.nodes) \
            if profile is not None else None
        if why:
            problems.append(Problem(f"extra_directives.{i}", why))
            continue
        if extra.startswith("-v "):
            # variables abcitrain already passes with the same value are not a clash: the
            # user may write PBS's whole list (-v RTYPE=rt_HF,USE_SSH=1)
            have = {item for d in kept if d.startswith("-v ") for item in d[3:].split(",")}
            rest = [item for item in extra[3:].split(",") if item and item not in have]
            if not rest:
                continue
            extra = "-v " + ",".join(rest)
        clash = sorted(taken[k] for k in keys(extra) if k in taken)
        if clash:
            problems.append(Problem(f"extra_directives.{i}", f"{extra!r} clashes with "
                                    f"{', '.join(repr(c) for c in clash)}, which abcitrain "
                                    "writes from the spec: change the spec key, or drop that "
                                    "directive with drop_directives"))
            continue
        kept.append(extra)
        taken.update({k: extra for k in keys(extra)})
    return kept
