"""Deprecated alias of :mod:`abcitrain.domain` (the shared dataclasses: ``JobSpec``,
``ClusterProfile``, ``JobState`` ...), kept for one release so that code written against
``abcitrain.model`` keeps working; it warns once when imported."""

from __future__ import annotations

import warnings

from .domain import *  # noqa: F403  (the whole old namespace, on purpose)

warnings.warn("abcitrain.model is now abcitrain.domain; the old name goes in the next "
              "release", DeprecationWarning, stacklevel=2)
