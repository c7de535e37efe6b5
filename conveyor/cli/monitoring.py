"""Monitoring commands: events (live view or --dump) and dashboard (the web UI)."""

from __future__ import annotations

import json
import shutil
import time

import click

from conveyor.cli.tasks import _app
from conveyor.core.errors import ConveyorError


@click.command()
@click.option("--dump", is_flag=True, help="Print each event as a JSON line.")
@click.option(
    "-F", "--frequency", type=float, default=1.0, show_default=True, help="Redraws per second."
)
@click.option("--count", type=int, default=None, help="Stop after this many events (or frames).")
@click.pass_context
def events(ctx: click.Context, dump: bool, frequency: float, count: int | None) -> None:
    """Watch the cluster: a live view of workers, task rates and failures, or --dump."""
    from conveyor.monitoring.state import ClusterState
    from conveyor.monitoring.stream import EventStream
    from conveyor.monitoring.terminal import render

    if frequency <= 0:
        raise click.BadParameter("must be positive", param_hint="--frequency")
    app = _app(ctx)
    stream = EventStream(app)
    state = ClusterState()
    try:
        state.apply(app.events.store.workers().values())
    except ConveyorError as exc:
        raise click.ClickException(f"reading the event history failed: {exc}") from exc
    seen = frames = 0
    next_frame = 0.0
    try:
        while count is None or (seen if dump else frames) < count:
            batch = stream.get(0.2 if not dump else 1.0)
            if dump:
                for event in batch[: None if count is None else count - seen]:
                    click.echo(json.dumps(event, default=str))
                seen += len(batch)
                continue
            state.apply(batch)
            if time.monotonic() >= next_frame:
                next_frame = time.monotonic() + 1.0 / frequency
                size = shutil.get_terminal_size((100, 40))
                frame = render(state, size.columns, size.lines - 1)
                click.echo("\x1b[H\x1b[2J" + frame, color=True)  # redrawn in place
                frames += 1
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--basic-auth",
    default=None,
    envvar="CONVEYOR_DASHBOARD_BASIC_AUTH",
    help="user:password for HTTP basic auth (or $CONVEYOR_DASHBOARD_BASIC_AUTH).",
)
@click.option(
    "--auth-token",
    default=None,
    envvar="CONVEYOR_DASHBOARD_TOKEN",
    help="A bearer token (16+ characters; or $CONVEYOR_DASHBOARD_TOKEN).",
)
@click.option("--read-only", is_flag=True, help="Show everything, change nothing.")
@click.option("-l", "--loglevel", default="INFO", show_default=True)
@click.pass_context
def dashboard(
    ctx: click.Context,
    port: int,
    address: str,
    basic_auth: str | None,
    auth_token: str | None,
    read_only: bool,
    loglevel: str,
) -> None:
    """Serve the web dashboard (loopback only unless an auth option is given)."""
    try:
        import uvicorn

        from conveyor.monitoring.dashboard.app import create_app
        from conveyor.monitoring.dashboard.security import Auth, check_binding
    except ImportError as exc:
        raise click.ClickException(
            f"the dashboard needs the dashboard extra: pip install 'conveyor[dashboard]' ({exc})"
        ) from None
    try:
        auth = Auth.from_options(basic_auth, auth_token)
        check_binding(address, auth)
    except ConveyorError as exc:
        raise click.ClickException(str(exc)) from exc
    app = _app(ctx)
    web = create_app(app, read_only=read_only, auth=auth)
    click.echo(f"conveyor dashboard on http://{address}:{port}/", err=True)
    uvicorn.run(web, host=address, port=port, log_level=loglevel.lower(), access_log=False)
