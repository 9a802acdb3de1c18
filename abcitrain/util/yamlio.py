"""YAML loading that keeps what the user wrote.

PyYAML follows YAML 1.1, where ``1:30`` is the base-60 integer 90: a walltime written as
``1:30`` would silently become 90 seconds. This loader reads such scalars as strings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import InputError, Problem

if TYPE_CHECKING:
    _SafeBase = yaml.SafeLoader
else:
    # libyaml's parser where PyYAML was built with it (its wheels are): 8x faster than the
    # pure-Python one on the profiles and specs (3.1 against 25.7 ms for six files here), on
    # every command's path. The constructor and resolver rules below are the same Python
    # code either way; libyaml refuses nesting past 1000 levels itself.
    _SafeBase = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


class _Loader(_SafeBase):
    """SafeLoader without YAML 1.1's sexagesimal integers and floats, refusing duplicate
    keys (PyYAML keeps the last silently: a second ``walltime:`` would win unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue                # "<<: *defaults" merges; keys written here win
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue                # an unhashable key: SafeLoader refuses it itself
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {str(key)[:60]!r} (first on line {first})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class WrittenFloat(float):
    """A float that remembers how it was written (``1.0e-4``, not ``0.0001``): a sweep's
    value reaches its task as the user typed it. Compares and computes as the float."""

    written: str

    def __new__(cls, value: float, written: str) -> WrittenFloat:
        obj = super().__new__(cls, value)
        obj.written = written
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (WrittenFloat, (float(self), self.written))


def _written_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    value = loader.construct_yaml_float(node)
    return WrittenFloat(value, node.value) if isinstance(value, float) else value


_Loader.add_constructor("tag:yaml.org,2002:float", _written_float)
# written back as written wherever abcitrain dumps YAML (safe_dump knows no float subclass)
yaml.SafeDumper.add_representer(
    WrittenFloat, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:float",
                                                                value.written))
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int",
                                                               "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?$|^[-+]?\.[0-9_]+$"),
    list("-+0123456789."),
)


#: A spec or profile is a page of settings: anything this big is a mistake (or an attack).
MAX_FILE_BYTES = 1024 * 1024
#: The most values a document may hold once its aliases are expanded: a "billion laughs"
#: document of a few lines would otherwise expand to gigabytes when validated or printed.
MAX_VALUES = 100_000


def _expanded_size(data: Any, memo: dict[int, int]) -> int:
    """How many values ``data`` holds with every alias expanded (shared nodes memoised, so
    this costs one visit per distinct node)."""
    key = id(data)
    if key in memo:
        return memo[key]
    memo[key] = 1           # a (forbidden anyway) cycle counts once instead of recursing
    if isinstance(data, dict):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo)
                       for k, v in data.items())
    elif isinstance(data, list):
        size = 1 + sum(_expanded_size(v, memo) for v in data)
    else:
        size = 1
    memo[key] = size
    return size


def load_yaml_text(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error becomes an InputError naming the file and line."""
    if len(text) > MAX_FILE_BYTES:
        raise InputError(f"{source} is too big", [Problem(
            source, f"{len(text)} characters, over {MAX_FILE_BYTES}: put data in files")])
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{source} is not valid YAML", [Problem(where, str(problem))]) from exc
    except RecursionError:
        raise InputError(f"{source} is nested too deeply", [Problem(
            source, "hundreds of levels of nesting: not a settings file")]) from None
    try:
        size = _expanded_size(data, {})
    except RecursionError:
        size = MAX_VALUES + 1
    if size > MAX_VALUES:
        raise InputError(f"{source} is too big once its aliases are expanded", [Problem(
            source, f"{size} values, over {MAX_VALUES}: YAML aliases (*name) repeat what "
            "they point to")])
    return data


def load_yaml_file(path: Path) -> Any:
    """Read and parse one YAML file."""
    try:
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path} is too big", [Problem(
                str(path), f"{path.stat().st_size} bytes, over {MAX_FILE_BYTES}")])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}", [Problem(str(path), exc.strerror or str(exc))]) \
            from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {path}", [Problem(
            str(path), f"is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}): a YAML file is text")]) from None
    return load_yaml_text(text, str(path))
