"""``abcitrain ssh``: trust a login node's host key, and check that it can be reached."""

from __future__ import annotations

import click


@click.group()
def ssh() -> None:
    """SSH to a cluster's login node from this machine (hosts of ~/.ssh/config)."""


@ssh.command()
@click.argument("host")
@click.option("--yes", is_flag=True, help="Add the key without asking (after checking its "
              "fingerprint elsewhere).")
def trust(host: str, yes: bool) -> None:
    """Show HOST's key fingerprint and add it to known_hosts when you agree. Jump hosts on the
    way must be trusted first (`abcitrain ssh trust JUMP`)."""
    from ..service.remote import host_key
    from ..service.remote import trust as record

    facts = host_key(host)
    click.echo(f"{facts.label} presents a {facts.key_type} key, fingerprint {facts.fingerprint}")
    if facts.known is True:
        click.echo("known_hosts already trusts this key: nothing to do")
        return
    if facts.known is None and not yes and not _agrees():
        click.echo("not trusted: nothing was written")
        raise SystemExit(1)
    click.echo(f"added to {record(facts)}")


def _agrees() -> bool:
    """The user's yes to trusting the key (no answer, as with no terminal, is no)."""
    try:
        return click.confirm("Compare it with the cluster's published fingerprint. Trust it?",
                             default=False)
    except click.exceptions.Abort:
        click.echo()
        return False


@ssh.command()
@click.argument("host")
def check(host: str) -> None:
    """Log in to HOST as abcitrain will (keys, jump hosts, known_hosts) and run `hostname`."""
    from ..service.remote import check as run_check

    for line in run_check(host):
        click.echo(line)
