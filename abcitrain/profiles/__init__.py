"""Cluster profiles: the shipped YAML files in this folder and the loader (``loader``)
that merges them with the user's and the project's layers and validates them into a
``ClusterProfile``.

Reads profile files; writes nothing.

May import: ``domain``, ``errors``, ``util``, ``backends`` (the registered schedulers).
"""

from .loader import (
    BUILTIN_DIR,
    PLACEHOLDERS,
    RESERVATION_PLACEHOLDERS,
    available_names,
    deep_merge,
    load_profile,
    raw_profile,
    search_dirs,
)

__all__ = ["BUILTIN_DIR", "PLACEHOLDERS", "RESERVATION_PLACEHOLDERS", "available_names",
           "deep_merge", "load_profile", "raw_profile", "search_dirs"]
