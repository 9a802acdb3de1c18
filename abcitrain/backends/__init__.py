"""Scheduler backends: one home per scheduler (``pbs/``, ``uge/``, ``slurm/``, ``local/``),
each everything abcitrain knows about its scheduler: directives and option tables, argv out,
text in, job variables, requeue, import, plan problems, reservations. No I/O.

Backends are found through the ``abcitrain.schedulers`` entry points, the built-in four
registered in abcitrain's own ``pyproject.toml`` exactly as a third party's package would
register its own (``[project.entry-points."abcitrain.schedulers"] NAME = "pkg.mod:Class"``).
A backend's module is imported only when it is asked for.

May import: ``domain``, ``errors``, ``util``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import UnknownNameError
from .base import Backend

GROUP = "abcitrain.schedulers"


@cache
def registered() -> dict[str, str]:
    """Scheduler name -> ``module:Class``, from every installed distribution's entry points.

    Read from the ``entry_points.txt`` files on ``sys.path`` directly, as
    ``importlib.metadata.entry_points(group=GROUP)`` reads them (the first distribution on
    the path that names a scheduler wins): importing ``importlib.metadata`` alone costs
    ~40 ms here, more than the rest of `abcitrain render`'s start (tests compare the two).
    What was read is kept in the user's cache folder while no folder on the path changes
    (installing or removing a distribution changes its folder): reading the 130 files of
    the kit's environment took 2.8 ms of every command, the kept answer 0.1 ms.
    """
    from ..util.paths import private_cache_dir

    key = _path_key()
    folder = private_cache_dir("entry-points")
    kept = _kept(folder, key) if folder is not None else None
    if kept is not None:
        return kept
    found = _scan()
    if folder is not None:
        _keep(folder, key, found)
    return found


#: The kept answer of ``registered``, in the private cache folder ``util.paths`` makes.
KEPT_FILE = "schedulers.json"


def _path_key() -> list[list[Any]]:
    """Each folder on ``sys.path`` with its modification time (ns; None when missing)."""
    key: list[list[Any]] = []
    for folder in sys.path:
        try:
            key.append([folder, Path(folder or ".").stat().st_mtime_ns])
        except OSError:
            key.append([folder, None])
    return key


def _kept(folder: Path, key: list[list[Any]]) -> dict[str, str] | None:
    """The scan kept in ``folder`` for this path, if nothing on it changed since."""
    try:
        data = json.loads((folder / KEPT_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    found = data.get("found") if isinstance(data, dict) and data.get("key") == key else None
    if not isinstance(found, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        return None
    return found


def _keep(folder: Path, key: list[list[Any]], found: dict[str, str]) -> None:
    """Keep a scan in ``folder`` for the next command; one that cannot be written is no
    error."""
    tmp = folder / f".{KEPT_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps({"key": key, "found": found}), "utf-8")
        tmp.replace(folder / KEPT_FILE)
    except OSError:
        # a read-only file system refuses the unlink too (EROFS, not "no such file")
        with contextlib.suppress(OSError):
            tmp.unlink()


def _scan() -> dict[str, str]:
    """Read the ``[abcitrain.schedulers]`` sections of every distribution on the path."""
    found: dict[str, str] = {}
    for folder in sys.path:
        try:
            dists = sorted(p for p in Path(folder or ".").iterdir()
                           if p.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
        for dist in dists:
            try:
                text = (dist / "entry_points.txt").read_text("utf-8")
            except OSError:
                continue
            for key, value in _section(text, GROUP).items():
                found.setdefault(key, value)
    return found


def _section(text: str, group: str) -> dict[str, str]:
    """``name = value`` lines of one ``[group]`` section of an entry_points.txt."""
    if f"[{group}]" not in text:
        return {}
    out: dict[str, str] = {}
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            inside = line == f"[{group}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def backend_names() -> list[str]:
    """Every registered scheduler's name, sorted."""
    return sorted(registered())


@cache
def get_backend(name: str) -> Backend:
    """Return the backend for scheduler ``name``; an unknown name lists the known ones."""
    target = registered().get(name)
    if target is None:
        raise UnknownNameError(f"unknown scheduler {name!r}; known schedulers: "
                               f"{', '.join(backend_names()) or 'none is installed'}")
    module, _, attr = target.partition(":")
    found: Any = importlib.import_module(module)
    for part in attr.split("."):
        found = getattr(found, part)
    backend = found()
    if not isinstance(backend, Backend):
        raise UnknownNameError(f"scheduler {name!r} ({target}) is not an abcitrain Backend")
    return backend


def all_backends() -> list[Backend]:
    """Every registered backend (each module imported)."""
    return [get_backend(name) for name in backend_names()]


def in_detect_order() -> list[Backend]:
    """Every registered backend, in the order a job's environment is read for them
    (``Backend.detect_order``: the local scheduler's own variables first)."""
    return sorted(all_backends(), key=lambda b: (b.detect_order, b.name))


def backend_running(env: Mapping[str, str]) -> Backend | None:
    """The backend whose job this process runs in, by the variables each scheduler sets
    (``Backend.runs_job``); None outside any known scheduler's job."""
    for backend in in_detect_order():
        if backend.runs_job(env):
            return backend
    return None


def backend_by_prefix(line: str) -> Backend | None:
    """The backend whose directive prefix starts ``line`` (``#PBS -l ...``, ``#$-cwd``);
    None if none."""
    for backend in all_backends():
        prefix = backend.directive_prefix
        # Grid Engine also reads "#$-l rt_F=1" (no blank), as ABCI 2.0 scripts write it
        if line.startswith(prefix) and line[len(prefix):len(prefix) + 1] in (" ", "\t", "-"):
            return backend
    return None


__all__ = ["GROUP", "Backend", "all_backends", "backend_by_prefix", "backend_names",
           "backend_running", "get_backend", "in_detect_order", "registered"]
