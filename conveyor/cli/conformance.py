"""`conveyor transports` and `conveyor conformance`."""

from __future__ import annotations

import click

from conveyor.core.registry import BACKEND_GROUP, TRANSPORT_GROUP, registrations


@click.command()
def transports() -> None:
    """List installed transports and result backends, built-in and plugin."""
    for title, group in (("Transports", TRANSPORT_GROUP), ("Result backends", BACKEND_GROUP)):
        click.echo(f"{title}:")
        for reg in registrations(group).values():
            click.echo(f"  {reg.scheme + '://':<18} {reg.origin:<28} {reg.target}")


@click.command()
@click.option("--broker", default=None, help="Transport URL to prove.")
@click.option("--backend", default=None, help="Result backend URL to prove.")
def conformance(broker: str | None, backend: str | None) -> None:
    """Run the conformance suite against a broker or backend URL."""
    raise click.UsageError("not implemented yet")
