"""Plain-text tables for the CLI: columns two spaces apart, no dependency."""

from __future__ import annotations

from collections.abc import Sequence


def table_lines(rows: Sequence[Sequence[str]], right: bool = False) -> list[str]:
    """The rows as aligned lines. Left-aligned tables leave the last column unpadded (it may
    be long free text); right-aligned ones (figures) pad every column."""
    count = len(rows[0])
    padded = count if right else count - 1
    widths = [max(len(row[i]) for row in rows) for i in range(padded)]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if right else c.ljust(w)
                 for c, w in zip(row[:padded], widths, strict=True)]
        lines.append("  ".join([*cells, *row[padded:]]))
    return lines
