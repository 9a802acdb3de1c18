"""What every verb prints the same way."""

from __future__ import annotations

from collections.abc import Sequence

import click

from ..errors import Problem


def echo_problems(problems: Sequence[Problem]) -> None:
    """Print problems to standard error, one per line, each with its severity."""
    for p in problems:
        click.echo(f"{p.severity}: {p}", err=True)
