"""Extra directives that would set a field abcitrain owns: refused, naming the spec key.

abcitrain writes the walltime, nodes, resource, array, dependency, reservation, group,
output, name and working folder from the spec, and checks and prices the job from them. A
user's extra directive that sets one of them would slip past the limits, the price and the
budget guard. How each scheduler spells those options is its backend's knowledge
(``Backend.options``, ``Backend.owned_fields``); this module only words the refusal.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..backends import Backend

#: The spec key that owns each field, for the message.
SPEC_KEY = {
    "walltime": "walltime", "nodes": "nodes", "resource": "resource", "array": "array",
    "dependency": "depends_on / dependency", "reservation": "reservation", "group": "group",
    "output": "output", "name": "name", "workdir": "workdir",
}


def owned_problem(directive: str, backend: Backend, resource_names: Iterable[str] = (),
                  nodes: int | None = None) -> str | None:
    """Why an extra directive is refused, or None when it sets no field abcitrain owns."""
    if backend.prints_instead_of_submitting(directive):
        return (f"{directive!r} makes the submit command print its help or version and "
                "submit nothing")
    found = backend.owned_fields(directive, tuple(resource_names), nodes)
    if not found:
        return None
    what = "; ".join(f"{f} ({spelled})" for f, spelled in found)
    keys = ", ".join(dict.fromkeys(SPEC_KEY[f] for f, _ in found))
    return (f"{directive!r} sets {what}, which abcitrain writes from the spec and checks "
            f"against the limits, the price and the budget: set the spec's {keys} instead")
