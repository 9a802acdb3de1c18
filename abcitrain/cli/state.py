"""``abcitrain move-aside``: set a broken job store or ledger aside, never deleting it."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("move-aside")
@click.argument("kind", type=click.Choice(["jobs", "ledger"]))
def move_aside(kind: str) -> None:
    """Rename abcitrain's job store (jobs) or points ledger (ledger) to FILE.broken-DATE,
    with its -wal and -shm files, so the next command starts a new one. Nothing is deleted:
    `sqlite3 FILE.broken-DATE .recover` may save its rows."""
    from ..points.ledger import ledger_path
    from ..util.paths import data_dir

    path = ledger_path() if kind == "ledger" else data_dir() / "abcitrain.db"
    if not path.exists():
        click.echo(f"{path} does not exist: nothing to move")
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            dest = Path(f"{path}.broken-{stamp}{suffix}")
            src.rename(dest)
            click.echo(f"moved {src} -> {dest}")
    click.echo(f"the next command starts a new {'ledger' if kind == 'ledger' else 'job store'}"
               + ("; jobs already submitted are no longer listed by `abcitrain status`"
                  if kind == "jobs" else "; charges recorded so far are not counted"))
