"""Parameter mappings: dotted keys set in nested mappings, a sweep task's train keys and its
label. Shared by the job side (batch) and training (train), which may not import each other
both ways."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def with_overrides(data: Any, overrides: Sequence[tuple[str, Any]]) -> Any:
    """``data`` with each (key, value) set; a dotted key (``train.steps``) sets a key in a
    nested mapping. Nothing is checked here: the result is validated like any spec."""
    if not overrides or not isinstance(data, Mapping):
        return data
    out = dict(data)
    for key, value in overrides:
        *parents, last = key.split(".")
        node = out
        for part in parents:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, Mapping) else {}
            node = node[part]
        node[last] = value
    return out


def train_overrides(task: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The (dotted key under train, value) pairs a sweep task sets in its training config."""
    return [(k[len("train."):], v) for k, v in task.items() if k.startswith("train.")]


def param_text(value: Any) -> str:
    """A parameter's value as the task sees it: what was written. YAML reads 1e-4 as text
    and 1.0e-4 as a float, which the loader keeps with its text (``yamlio.WrittenFloat``);
    a float from elsewhere (Python, --set) takes its shortest round-tripping form."""
    written = getattr(value, "written", None)
    if isinstance(written, str):
        return written
    return repr(value) if isinstance(value, float) else str(value)


def label(task: Mapping[str, Any]) -> str:
    """A short human name of one task's parameters ("LR=0.0003 SEED=2")."""
    return " ".join(f"{k}={param_text(v)}" for k, v in task.items())
