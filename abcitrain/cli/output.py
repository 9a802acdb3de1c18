"""What every verb prints the same way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from ..errors import AbcitrainError, InputError, Problem


def echo_problems(problems: Sequence[Problem]) -> None:
    """Print problems to standard error, one per line, each with its severity."""
    for p in problems:
        click.echo(f"{p.severity}: {p}", err=True)


IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def writable_image(path: Path, option: str) -> None:
    """Refuse (exit 2) an image path matplotlib cannot write: an unknown suffix, or a
    folder that does not exist."""
    problems = []
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        problems.append(Problem(option, f"{str(path)[:200]!r}: end it in "
                                f"{', '.join(IMAGE_SUFFIXES)}"))
    if not path.parent.is_dir():
        problems.append(Problem(option, f"the folder {str(path.parent)[:200]!r} does not exist"))
    if problems:
        raise InputError(f"cannot write {option}", problems)


def error_json(exc: AbcitrainError, cluster: str | None, **more: object) -> dict[str, object]:
    """A refusal as ``--json`` prints it (docs/json.md): ok false, its title, every error and
    warning with where it is, and the keys a success would have (``more``) set to null."""
    problems = exc.problems if isinstance(exc, InputError) else []
    title = exc.title if isinstance(exc, InputError) else (str(exc).splitlines() or [""])[0]
    errors = [{"where": p.where, "message": p.message} for p in problems
              if p.severity != "warning"]
    return {"ok": False, "cluster": cluster, "title": title,
            "errors": errors or ([] if problems else [{"where": "", "message": str(exc)}]),
            "warnings": [{"where": p.where, "message": p.message} for p in problems
                         if p.severity == "warning"], **more}
