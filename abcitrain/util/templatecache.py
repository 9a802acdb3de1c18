"""Compiled Jinja2 templates kept between runs, in the user's cache folder: compiling the job
templates took ~25 ms of every `render`, `check` and `submit` (bench/cold_start.py).

Jinja2 checks each cached template against its source's checksum, so an edited template is
compiled again. The cache is an optimisation only: a folder that cannot be made or written
(a read-only home) means templates are compiled as before, and nothing is said.
"""

from __future__ import annotations

import contextlib
from functools import cache
from typing import Any

import jinja2
from jinja2.bccache import Bucket

from .paths import private_cache_dir


class _QuietCache(jinja2.FileSystemBytecodeCache):
    """A bytecode cache that never fails a render: a failed read or write is a miss."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError):
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


@cache
def bytecode_cache() -> Any:
    """The cache for this user (None where its folder cannot be made private: marshalled
    code is loaded from it)."""
    folder = private_cache_dir("jinja2")
    return None if folder is None else _QuietCache(str(folder))
