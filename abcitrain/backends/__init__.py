"""Scheduler backends, found by name: each builds argv lists and parses the scheduler's text
(PBS Pro, Grid Engine, Slurm, local) and does no I/O. Imported lazily so the CLI only loads
what it uses.

May import: ``model``, ``errors``, ``util``.
"""

from __future__ import annotations

import importlib

from ..errors import UnknownNameError
from .base import Backend

_BACKENDS = {
    "pbs": ("abcitrain.backends.pbs", "PbsBackend"),
    "uge": ("abcitrain.backends.uge", "GridEngineBackend"),
    "slurm": ("abcitrain.backends.slurm", "SlurmBackend"),
    "local": ("abcitrain.backends.local", "LocalBackend"),
}


def get_backend(name: str) -> Backend:
    """Return the backend for scheduler ``name``; an unknown name lists the known ones."""
    try:
        module, cls = _BACKENDS[name]
    except KeyError:
        raise UnknownNameError(f"unknown scheduler {name!r}; known schedulers: "
                               f"{', '.join(sorted(_BACKENDS))}") from None
    backend: Backend = getattr(importlib.import_module(module), cls)()
    return backend

