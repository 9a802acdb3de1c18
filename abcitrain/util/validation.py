"""Structural validation on top of voluptuous, with messages a user can act on.

Every problem names the key path (``resource_types.rt_HF.gpus``), the bad value and, where
there is a closed set, the valid choices. All problems are collected before reporting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import voluptuous as vol

from ..errors import InputError, Problem
from .durations import parse_duration

_MISSING = object()


def one_of(choices: Iterable[str], what: str = "value") -> Callable[[Any], Any]:
    """A validator accepting one of ``choices``; its message lists them."""
    allowed = list(choices)

    def check(value: Any) -> Any:
        if value not in allowed:
            raise vol.Invalid(f"{value!r} is not a valid {what}; choose one of: "
                              f"{', '.join(map(str, allowed))}")
        return value

    return check


def matching(pattern: str, what: str) -> Callable[[Any], str]:
    """A validator for strings that fully match ``pattern``; ``what`` describes the form."""
    rx = re.compile(pattern)

    def check(value: Any) -> str:
        if not isinstance(value, str) or not rx.fullmatch(value):
            raise vol.Invalid(f"{value!r} is not allowed: {what}")
        return value

    return check


def int_between(low: int, high: int | None = None) -> Callable[[Any], int]:
    """A validator for integers in [low, high] (bools are refused)."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid(f"{value!r} is not a whole number")
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise vol.Invalid(f"{value!r} must be {bound}")
        return value

    return check


def number_at_least(low: float) -> Callable[[Any], float]:
    """A validator for numbers (int or float) of at least ``low``."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid(f"{value!r} is not a number")
        if value < low:
            raise vol.Invalid(f"{value!r} must be at least {low}")
        return value

    return check


def nullable(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A validator that lets None (an empty YAML value) through and checks anything else."""

    def run(value: Any) -> Any:
        return None if value is None else check(value)

    return run


def duration(value: Any) -> int:
    """A validator that turns a walltime into seconds."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise vol.Invalid(str(exc)) from None


def string_list(item: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    """A validator for a list whose items each pass ``item``; a bare string is refused."""
    return vol.All(vol.Msg(list, "expected a list"), [item])


def validate(schema: vol.Schema, data: Any, title: str) -> Any:
    """Run ``schema`` over ``data``; raise InputError listing every problem."""
    try:
        return schema(data)
    except vol.MultipleInvalid as exc:
        problems = [_problem(schema.schema, data, err) for err in exc.errors]
    except vol.Invalid as exc:
        problems = [_problem(schema.schema, data, exc)]
    raise InputError(title, _dedupe(problems))


def problems_of(schema: vol.Schema, data: Any) -> list[Problem]:
    """Like ``validate`` but return the problems instead of raising."""
    try:
        schema(data)
    except vol.MultipleInvalid as exc:
        return _dedupe([_problem(schema.schema, data, err) for err in exc.errors])
    except vol.Invalid as exc:
        return [_problem(schema.schema, data, exc)]
    return []


def _dedupe(problems: Sequence[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        if (p.where, p.message) not in seen:
            seen.add((p.where, p.message))
            out.append(p)
    return out


def _problem(schema: Any, data: Any, err: vol.Invalid) -> Problem:
    path = [str(p) for p in err.path]
    where = ".".join(path)
    msg = err.msg
    if msg == "extra keys not allowed":
        allowed = _keys_at(schema, err.path[:-1])
        choices = f"; valid keys here: {', '.join(allowed)}" if allowed else ""
        return Problem(where, f"unknown key{choices}")
    if msg == "required key not provided":
        return Problem(where, "is required")
    value = _value_at(data, err.path)
    if msg.startswith(("expected ", "not a valid value")) and value is not _MISSING:
        return Problem(where, f"{value!r}: {msg}")
    return Problem(where, msg)


def _value_at(data: Any, path: Sequence[Any]) -> Any:
    cur = data
    for key in path:
        in_map = isinstance(cur, Mapping) and key in cur
        in_list = isinstance(cur, list) and isinstance(key, int) and key < len(cur)
        if in_map or in_list:
            cur = cur[key]
        else:
            return _MISSING
    return cur


def _keys_at(schema: Any, path: Sequence[Any]) -> list[str]:
    cur = schema
    for key in path:
        cur = _unwrap(cur)
        if not isinstance(cur, dict):
            return []
        nxt = None
        for marker, sub in cur.items():
            name = marker.schema if isinstance(marker, vol.Marker) else marker
            if name == key or isinstance(name, type):
                nxt = sub
                break
        if nxt is None:
            return []
        cur = nxt
    cur = _unwrap(cur)
    if not isinstance(cur, dict):
        return []
    names = [m.schema if isinstance(m, vol.Marker) else m for m in cur]
    return sorted(str(n) for n in names if isinstance(n, str))


def _unwrap(node: Any) -> Any:
    if isinstance(node, vol.Schema):
        return _unwrap(node.schema)
    if isinstance(node, vol.All):
        for v in node.validators:
            inner = _unwrap(v)
            if isinstance(inner, dict):
                return inner
    return node
