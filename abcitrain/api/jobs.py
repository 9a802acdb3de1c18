"""Deprecated alias of :mod:`abcitrain.api.submission` (plan, submit, submit_chain, follow,
Job), kept for one release so that ``from abcitrain.api import jobs`` keeps working; it warns
once when imported."""

from __future__ import annotations

import warnings

from .submission import Job, SpecLike, follow, plan, submit, submit_chain

__all__ = ["Job", "SpecLike", "follow", "plan", "submit", "submit_chain"]

warnings.warn("abcitrain.api.jobs is now abcitrain.api.submission; the old name goes in the "
              "next release", DeprecationWarning, stacklevel=2)
