"""Counts in words: "1 node", "2 nodes", never "1 nodes" or "node(s)"."""

from __future__ import annotations

#: Words whose plural is not the word plus "s".
_IRREGULAR = {"was": "were", "is": "are", "entry": "entries"}


def plural(count: object, word: str) -> str:
    """``count`` followed by ``word``, in the plural unless ``count`` is exactly 1
    (counts that are not numbers, like "?", take the plural)."""
    one = str(count) == "1"
    return f"{count} {word if one else _IRREGULAR.get(word, word + 's')}"
