"""Words for people: counts ("1 node", "2 nodes", never "1 nodes" or "node(s)") and the
"did you mean" of a misspelt name."""

from __future__ import annotations

from collections.abc import Iterable

#: Words whose plural is not the word plus "s".
_IRREGULAR = {"was": "were", "is": "are", "entry": "entries"}


def plural(count: object, word: str) -> str:
    """``count`` followed by ``word``, in the plural unless ``count`` is exactly 1
    (counts that are not numbers, like "?", take the plural)."""
    one = str(count) == "1"
    return f"{count} {word if one else _IRREGULAR.get(word, word + 's')}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """" (did you mean 'submit'?)" for the closest of ``choices`` to a misspelt ``word``; ""
    when none is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
