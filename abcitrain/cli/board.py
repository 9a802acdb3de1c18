"""``abcitrain board``: the organizer's read-only web page of every team's points, jobs and
reservations (``abcitrain.board``); ``--html`` writes it once to a file, ``--json`` prints
its data once. The server and chart imports load only here."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..util.words import plural


@click.command()
@click.argument("board_file", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--group", "groups", multiple=True, metavar="GROUP",
              help="A team's group (repeatable; replaces the board file's groups).")
@click.option("--ends", metavar="WHEN",
              help="The event's end, YYYY-MM-DD or YYYY-MM-DDTHH:MM[+09:00]: forecasts are "
              "drawn to it and a team that runs out before it is flagged.")
@click.option("--refresh", "refresh_s", type=int, metavar="SECONDS",
              help="Seconds between two refreshes (at least 10; default 60): one scheduler "
              "query per cluster per refresh, whatever the number of teams or viewers.")
@click.option("--title", help="The page's title.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but loopback needs --token-file.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free one; the address is printed).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File (mode 600) holding the token a browser must present; required "
              "off loopback. The token is never printed or logged.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the page once, as one self-contained file to share, and exit.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the board's data once (as /data.json serves it) and exit.")
@click.option("--no-refresh", is_flag=True,
              help="With --html or --json: do not ask the schedulers first.")
def board(board_file: Path | None, groups: tuple[str, ...], ends: str | None,
          refresh_s: int | None, title: str | None, host: str, port: int,
          token_file: Path | None, html_file: Path | None, as_json: bool,
          no_refresh: bool) -> None:
    """A web page of every team's points, jobs and reservations, refreshed on its own."""
    from ..board.config import load_board
    from ..board.server import is_loopback, read_token
    from ..errors import InputError, Problem

    config = load_board(board_file, groups, ends, refresh_s, title)
    once = html_file is not None or as_json
    problems = []
    if once and token_file is not None:
        problems.append(Problem("--token-file", "only for serving the page, not with "
                                "--html or --json"))
    if not once and not is_loopback(host) and token_file is None:
        problems.append(Problem("--host", f"{host} can be reached from other machines: "
                                "give --token-file (a file of mode 600 holding a random "
                                "token, e.g. `openssl rand -hex 16 > board.token`)"))
    if problems:
        raise InputError("cannot start the board", problems)
    from ..board.page import build_page, render_page
    from ..board.snapshot import collect, refresh

    if once:
        snap = collect(config, None if no_refresh else refresh(config))
        if as_json:
            click.echo(json.dumps(snap.data, indent=1))
        if html_file is not None:
            html_file.write_text(render_page(snap, None), encoding="utf-8")
            if not as_json:
                click.echo(f"wrote {html_file} ({plural(len(config.teams), 'team')})")
        return
    from ..board.server import Board, bind, serve

    token = read_token(token_file) if token_file is not None else None
    sock = bind(host, port)
    board_app = Board(config, lambda: build_page(config), token, loopback=is_loopback(host))
    board_app.update()                           # the first page, before the first viewer
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    click.echo(f"board for {plural(len(config.teams), 'team')} at {url}"
               + (" (open it with ?token=<the token in the token file>)" if token else "")
               + f"; refreshes every {config.refresh_s} s; Ctrl-C stops it", err=True)
    serve(board_app, sock)
