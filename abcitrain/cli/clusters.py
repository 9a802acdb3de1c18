"""``abcitrain clusters``: the cluster profiles, and one as merged from every layer."""

from __future__ import annotations

import click

from ..util.tables import table_lines


@click.group(invoke_without_command=True)
@click.pass_context
def clusters(ctx: click.Context) -> None:
    """List the cluster profiles (built in, yours, and the project's)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..profiles import available_names, load_profile

    rows = [("NAME", "SCHEDULER", "RESOURCE TYPES", "DESCRIPTION")]
    for name in available_names():
        p = load_profile(name)
        rows.append((name, p.scheduler, ",".join(p.resource_types), p.description))
    for line in table_lines(rows):
        click.echo(line)


@clusters.command("show")
@click.argument("name")
def clusters_show(name: str) -> None:
    """Print one cluster profile as merged from every layer, with its sources."""
    import yaml

    from ..profiles import load_profile

    p = load_profile(name)
    click.echo(f"# {name}: merged from {p.source}")
    data = dict(p.data)
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
