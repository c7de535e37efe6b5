"""`conveyor transports` and `conveyor conformance`."""

from __future__ import annotations

import sys
import textwrap

import click

from conveyor.core.errors import ConfigurationError
from conveyor.core.registry import BACKEND_GROUP, TRANSPORT_GROUP, load, registrations
from conveyor.core.url import parse_url

TITLE_WIDTH = 72


@click.command()
def transports() -> None:
    """List installed transports and result backends, built-in and plugin."""
    for title, group in (("Transports", TRANSPORT_GROUP), ("Result backends", BACKEND_GROUP)):
        click.echo(f"{title}:")
        for reg in registrations(group).values():
            click.echo(f"  {reg.scheme + '://':<18} {reg.origin:<28} {reg.target}")


@click.command()
@click.option("--broker", default=None, help="Transport URL to prove (T clauses).")
@click.option("--backend", default=None, help="Result backend URL to prove (B clauses).")
@click.option("-k", "keyword", default=None, help="Only clauses whose test name matches.")
def conformance(broker: str | None, backend: str | None, keyword: str | None) -> None:
    """Run the conformance suite against a real broker or backend and print a table.

    Exits 0 only when every clause passes (or is n/a by a declared capability).
    """
    from conveyor.testing.runner import run_suite

    if not broker and not backend:
        raise click.UsageError("give --broker URL and/or --backend URL")
    all_ok = True
    for kind, url in (("broker", broker), ("backend", backend)):
        if not url:
            continue
        try:
            parsed = parse_url(url)
            load(TRANSPORT_GROUP if kind == "broker" else BACKEND_GROUP, parsed.scheme)
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc), param_hint=f"--{kind}") from None
        shown = str(parsed)
        click.echo(f"\nconveyor conformance: {kind} {shown}\n")
        results = run_suite(kind, url, ["-k", keyword] if keyword else None)
        if not results:
            click.echo("  no clause ran (see the errors above)", err=True)
            all_ok = False
            continue
        width = min(TITLE_WIDTH, max(len(r.title) for r in results))
        click.echo("\n  id   " + "clause".ljust(width) + "  result")
        for result in results:
            color = "green" if result.status == "pass" else "red" if not result.ok else "yellow"
            status = click.style(result.status, fg=color)
            title = textwrap.shorten(result.title, width, placeholder="...")
            click.echo(f"  {result.id:<4} {title.ljust(width)}  {status}")
        failed = [r for r in results if not r.ok]
        for result in failed:
            click.echo(f"\n{result.id} failed:\n" + "\n".join(result.details), err=True)
        passed = sum(r.status == "pass" for r in results)
        na = sum(r.status.startswith("n/a") for r in results)
        click.echo(f"\n  {passed} passed, {len(failed)} failed, {na} n/a")
        all_ok = all_ok and not failed
    sys.exit(0 if all_ok else 1)
