"""What a scheduler command printed (``Output``) and plain explanations of its messages:
shared by the job and the reservation contracts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Output:
    """What one command printed, for a parser."""

    stdout: str
    stderr: str
    returncode: int


def explain_by(explanations: Sequence[tuple[str, str]], text: str) -> str | None:
    """The meaning of the first pattern in ``explanations`` that ``text`` matches."""
    for pattern, meaning in explanations:
        if re.search(pattern, text):
            return meaning
    return None
