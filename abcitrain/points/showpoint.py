"""Parse ABCI's ``show_point`` output (ABCI 2.0 and 3.0 forms) into group balances."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class GroupPoints:
    """One group's line: points bought and points used."""

    group: str
    used: Decimal
    point: Decimal

    @property
    def remaining(self) -> Decimal:
        """Points left."""
        return self.point - self.used


def parse_show_point(text: str) -> list[GroupPoints]:
    """The group lines of ``show_point`` (user lines, starting with a tree mark, are skipped).

    Columns: Group, Disk, ObjectStorage (3.0) or CloudStorage (2.0), Used, Point, Used%."""
    lines = text.splitlines()
    header = next((i for i, ln in enumerate(lines) if ln.split()[:1] == ["Group"]), None)
    if header is None:
        raise ValueError("not show_point output: no 'Group' header line")
    columns = lines[header].split()
    try:
        used_at, point_at = columns.index("Used"), columns.index("Point")
    except ValueError:
        raise ValueError(f"unexpected show_point header: {lines[header]!r}") from None
    groups = []
    for line in lines[header + 1:]:
        fields = line.split()
        if len(fields) != len(columns) or fields[0][0] in "`|":
            continue
        try:
            used = Decimal(fields[used_at].replace(",", ""))
            point = Decimal(fields[point_at].replace(",", ""))
        except InvalidOperation:
            continue
        groups.append(GroupPoints(fields[0], used, point))
    return groups
