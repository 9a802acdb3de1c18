"""``abcitrain clusters``: the cluster profiles, and one as merged from every layer."""

from __future__ import annotations

import click

from ..util.tables import table_lines


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def clusters(ctx: click.Context, as_json: bool) -> None:
    """List the cluster profiles (built in, yours, and the project's)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..errors import AbcitrainError
    from ..profiles import available_names, load_profile

    rows = [("NAME", "SCHEDULER", "RESOURCE TYPES", "DESCRIPTION")]
    broken = []
    for name in available_names():
        try:
            p = load_profile(name)
        except AbcitrainError as exc:     # one broken file must not hide the others
            broken.append(str(exc))
            rows.append((name, "-", "-", "BROKEN: see below"))
            continue
        rows.append((name, p.scheduler, ",".join(p.resource_types), p.description))
    if as_json:
        import json

        click.echo(json.dumps([{"name": r[0], "scheduler": r[1],
                                "resource_types": r[2].split(",") if r[2] != "-" else [],
                                "description": r[3]} for r in rows[1:]], indent=1))
    else:
        for line in table_lines(rows):
            click.echo(line)
    for text in broken:
        click.echo(f"error: {text}", err=True)
    if broken:
        raise SystemExit(2)


@clusters.command("show")
@click.argument("name")
def clusters_show(name: str) -> None:
    """Print one cluster profile as merged from every layer, with its sources."""
    import yaml

    from ..profiles import load_profile

    p = load_profile(name)
    click.echo(f"# {name}: merged from {p.source}")
    data = _readable(dict(p.data))
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


_DURATIONS = {"max_walltime", "walltime_overrun"}


def _readable(data: object) -> object:
    """The profile's data with durations written back as H:MM:SS (validation turned them
    into seconds), so what is shown reads like what was written."""
    from ..util.durations import format_hms

    if isinstance(data, dict):
        return {k: (format_hms(v) if k in _DURATIONS and isinstance(v, int) else _readable(v))
                for k, v in data.items()}
    if isinstance(data, list):
        return [_readable(v) for v in data]
    return data
