"""``abcitrain clusters``: the cluster profiles, and one as merged from every layer."""

from __future__ import annotations

from typing import Any

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

    rows = [("NAME", "SCHEDULER", "TALKS TO", "RESOURCE TYPES", "DESCRIPTION")]
    broken = []
    for name in available_names():
        try:
            p = load_profile(name)
        except AbcitrainError as exc:     # one broken file must not hide the others
            broken.append(str(exc))
            rows.append((name, "-", "-", "-", "BROKEN: see below"))
            continue
        rows.append((name, p.scheduler, _talks_to(p), ",".join(p.resource_types),
                     p.description))
    if as_json:
        import json

        click.echo(json.dumps([{"name": r[0], "scheduler": r[1], "talks_to": r[2],
                                "resource_types": r[3].split(",") if r[3] != "-" else [],
                                "description": r[4]} for r in rows[1:]], indent=1))
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


def _talks_to(profile: Any) -> str:
    """Where this profile's commands would go from here: the scheduler installed on this
    machine (and whether it is the profile's), or the login node over SSH."""
    from ..backends import get_backend
    from ..service.identity import identify, installed, own_folder, scheduler_is_here

    backend = get_backend(profile.scheduler)
    destination = profile.login.get("ssh")
    program = backend.submit_argv("job.sh", ())[0]
    if not scheduler_is_here(profile):
        return f"ssh {destination}"
    if not backend.identify_argv:
        return "this machine"
    got = installed(backend.identify_argv[0])
    if got is None:
        return f"nothing here ({program} not installed)" + (
            f"; ssh {destination} needs login.mode: ssh" if destination else "")
    if got[0] == "?":
        return f"here: {program}, which does not say whose it is ({got[1] or 'no answer'})"
    folder = own_folder(profile)
    if folder is not None:
        own = identify(f"{folder}/{backend.identify_argv[0]}")
        return (f"here: {own[1]} ({folder}; {got[0]}'s {backend.identify_argv[0]} comes "
                "first on PATH)")
    if got[0] != backend.name:
        return f"WRONG: the {program} here is {got[0]}'s ({got[1]})"
    return f"here: {got[1]}"
