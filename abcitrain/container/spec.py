"""Container specs: what goes into an image, validated whole (every problem at once).

::

    name: train                                   # containers/train.def -> train.sif
    base: docker://nvcr.io/nvidia/pytorch:24.10-py3   # localimage://, oras://, library://
    system_packages: [libaio-dev]                 # apt-get, NAME or NAME=VERSION
    python_packages: [deepspeed==0.19.8, transformers==5.0.0]   # pinned: NAME==VERSION
    pip_index_url: https://download.pytorch.org/whl/cpu          # optional
    files: [{from: containers/wheels, to: /opt/wheels}]          # destinations absolute
    environment: {HF_HUB_OFFLINE: "1"}
    labels: {Maintainer: llm-team}
    runscript: [python3]                          # the image's run: exec ARGV "$@"
    test: [[python3, -c, "import torch, deepspeed"]]
    post: [[python3, -m, pip, check]]             # more build steps, argv lists
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol

from ..errors import InputError, Problem
from ..util import validation as v
from ..util.yamlio import load_yaml_file

NAME_RE = r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}"
#: base image: the bootstrap agent, then a reference of characters no definition parser or
#: shell treats specially
BASE_RE = r"(docker|localimage|oras|library)://([A-Za-z0-9][A-Za-z0-9_./:@+-]{0,254})"
#: pinned Python requirements: NAME[extras]==VERSION, or NAME @ https://... (a wheel URL)
PIP_PINNED_RE = (r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?"
                 r"(==[A-Za-z0-9.+!_-]+| @ https://[A-Za-z0-9._~:/?#@!$&()*+,;=%-]+)")
APT_RE = r"[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+~:_-]+)?"
PATH_RE = r"[A-Za-z0-9_./+-]{1,255}"
ENV_KEY_RE = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
LABEL_KEY_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
URL_RE = r"https://[A-Za-z0-9._~:/?#@!&()*+,;=%-]{1,500}"


def _line(value: Any) -> str:
    """One printable line of text (a label or environment value)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise vol.Invalid(f"{value!r} must be text or a number")
    text = str(value)
    if not text.isprintable():
        raise vol.Invalid("must be one line of printable text (no newline or control "
                          "character: a definition file is read line by line)")
    if len(text) > 4096:
        raise vol.Invalid("is over 4096 characters")
    return text


def _argv(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise vol.Invalid("expected an argv list such as [python3, -c, 'import torch']")
    return [_line(item) for item in value]


def _absolute(value: Any) -> str:
    text = v.matching(PATH_RE, "a path is letters, digits and _ . / + -")(value)
    if not text.startswith("/"):
        raise vol.Invalid(f"{text!r} is relative: a destination in the image must be "
                          "absolute (/opt/...), or the build puts it wherever it runs")
    return text


def _source(value: Any) -> str:
    text = v.matching(PATH_RE, "a path is letters, digits and _ . / + -")(value)
    if text.startswith("-"):
        raise vol.Invalid(f"{text!r} starts with '-'")
    return text


SCHEMA = vol.Schema({
    vol.Required("name"): v.matching(NAME_RE, "letters, digits, _ . + - (the image's name)"),
    vol.Required("base"): v.matching(BASE_RE, "docker://IMAGE:TAG, localimage:///PATH.sif, "
                                     "oras://REF or library://REF"),
    vol.Optional("system_packages", default=[]): v.string_list(v.matching(
        APT_RE, "a Debian package: name or name=version")),
    vol.Optional("python_packages", default=[]): v.string_list(v.matching(
        PIP_PINNED_RE, "pinned: NAME==VERSION (or NAME @ https://...whl), so that the image "
        "can be built again the same")),
    vol.Optional("pip_index_url"): v.nullable(v.matching(URL_RE, "an https:// URL")),
    vol.Optional("files", default=[]): [{vol.Required("from"): _source,
                                         vol.Required("to"): _absolute}],
    vol.Optional("environment", default={}): {v.matching(ENV_KEY_RE, "an environment "
                                                         "variable name"): _line},
    vol.Optional("labels", default={}): {v.matching(LABEL_KEY_RE, "a label is letters, "
                                                    "digits, _ . -"): _line},
    vol.Optional("runscript"): v.nullable(_argv),
    vol.Optional("test", default=[]): [_argv],
    vol.Optional("post", default=[]): [_argv],
    vol.Optional("help"): v.nullable(_line),
})


@dataclass(frozen=True)
class ContainerSpec:
    """A validated container spec (see the module docstring)."""

    name: str
    bootstrap: str
    source: str
    system_packages: tuple[str, ...] = ()
    python_packages: tuple[str, ...] = ()
    pip_index_url: str | None = None
    files: tuple[tuple[str, str], ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    runscript: tuple[str, ...] | None = None
    test: tuple[tuple[str, ...], ...] = ()
    post: tuple[tuple[str, ...], ...] = ()
    help: str | None = None
    #: What the user wrote, normalised: recorded in the image's labels.
    recipe: Mapping[str, Any] = field(default_factory=dict)


def parse_container(data: Any, source: str = "container spec") -> ContainerSpec:
    """Validate a mapping and build the spec; InputError lists every problem."""
    if not isinstance(data, Mapping):
        raise InputError(f"{source} is not a container spec", [Problem(
            "", "expected a mapping with name:, base: and what goes in the image")])
    clean = v.validate(SCHEMA, dict(data), f"{source} has errors")
    m = re.fullmatch(BASE_RE, clean["base"])
    assert m is not None
    return ContainerSpec(
        name=clean["name"], bootstrap=m[1], source=m[2],
        system_packages=tuple(clean["system_packages"]),
        python_packages=tuple(clean["python_packages"]),
        pip_index_url=clean.get("pip_index_url"),
        files=tuple((f["from"], f["to"]) for f in clean["files"]),
        environment=dict(clean["environment"]), labels=dict(clean["labels"]),
        runscript=tuple(clean["runscript"]) if clean.get("runscript") else None,
        test=tuple(tuple(t) for t in clean["test"]),
        post=tuple(tuple(p) for p in clean["post"]), help=clean.get("help"), recipe=clean)


def load_container(path: Path) -> ContainerSpec:
    """Load and validate a container spec file."""
    return parse_container(load_yaml_file(path), str(path))
