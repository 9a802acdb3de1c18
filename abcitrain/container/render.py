"""A container spec rendered as a Singularity/Apptainer definition file (Jinja2 template
``templates/container-spec.def.j2``), its recipe recorded in its labels."""

from __future__ import annotations

import hashlib
import json
from functools import cache

import jinja2

from .. import __version__
from ..batch.render import templates_dir
from ..util.shellquote import quote
from .spec import ContainerSpec

#: The labels abcitrain adds: the recipe (the normalised spec as one line of JSON), its
#: SHA-256, and the version that rendered it, so that an image leads back to its recipe.
RECIPE_LABEL = "abcitrain.recipe"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        autoescape=False)  # noqa: S701 - a definition file, not HTML; values go through |q
    env.filters["q"] = quote
    return env


def recipe_json(spec: ContainerSpec) -> str:
    """The spec as one line of JSON, keys sorted: the label that records the recipe."""
    return json.dumps(spec.recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def labels_of(spec: ContainerSpec) -> dict[str, str]:
    """The image's labels: the spec's, then abcitrain's record of the recipe."""
    recipe = recipe_json(spec)
    return {**spec.labels, RECIPE_LABEL: recipe,
            f"{RECIPE_LABEL}.sha256": hashlib.sha256(recipe.encode()).hexdigest(),
            "abcitrain.version": __version__}


def render_definition(spec: ContainerSpec) -> str:
    """The definition file for ``spec``."""
    return _environment().get_template("container-spec.def.j2").render(
        spec=spec, labels=labels_of(spec), version=__version__)
