"""Deprecated alias of :mod:`abcitrain.memory` (``models.memory`` is now ``memory.states``),
kept for one release so that ``import abcitrain.models.peak`` and the like keep working; it
warns once when imported.

May import: ``memory``.
"""

from __future__ import annotations

import sys
import warnings
from importlib import import_module

warnings.warn("abcitrain.models is now abcitrain.memory (models.memory is memory.states); "
              "the old name goes in the next release", DeprecationWarning, stacklevel=2)

# the old submodule names resolve to the new modules (the import system finds them here)
for _old, _new in (("memory", "states"), ("peak", "peak"), ("shapes", "shapes")):
    _module = import_module(f"abcitrain.memory.{_new}")
    sys.modules[f"{__name__}.{_old}"] = _module
    globals()[_old] = _module
