"""`conveyor -A tasks beat`: the periodic scheduler, until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from conveyor.app.base import Conveyor
from conveyor.cli.tasks import _app
from conveyor.cli.worker_options import CommandLine
from conveyor.core.errors import ConveyorError


@click.command()
@click.option(
    "-s",
    "--schedule",
    "schedule_file",
    default=None,
    help="Keep the lease and last-run times in this SQLite file (default: the broker's or "
    "backend's store, which every beat of the app shares).",
)
@click.option("--max-interval", type=float, default=None, help="Longest sleep between checks (s).")
@click.option(
    "--lease-timeout",
    type=float,
    default=None,
    help="Seconds a dead leader keeps the lead (default: beat_lease_timeout, 10).",
)
@click.option("-l", "--loglevel", default="INFO", show_default=True, help="Logging level.")
@click.option("-f", "--logfile", default=None, help="Log to this file instead of stderr.")
@click.option(
    "--status", is_flag=True, help="Print the leader and each entry's last and next run, exit."
)
@click.option("--pidfile", default=None, help="Write beat's pid here (refused if it is alive).")
@click.option("-D", "--detach", is_flag=True, help="Run in the background.")
@click.pass_context
def beat(
    ctx: click.Context,
    schedule_file: str | None,
    max_interval: float | None,
    lease_timeout: float | None,
    loglevel: str,
    logfile: str | None,
    status: bool,
    pidfile: str | None,
    detach: bool,
) -> None:
    """Send periodic tasks; several may run, one leads (docs/beat.md)."""
    from conveyor.utils.log import setup_logging

    setup_logging(loglevel, logfile)
    app = _app(ctx)
    if status:
        _print_status(app, schedule_file)
        return
    try:
        from conveyor.beat.scheduler import default_holder  # needs the `beat` extra
        from conveyor.beat.service import build

        scheduler = build(
            app,
            schedule_file=schedule_file,
            max_interval=max_interval,
            lease_timeout=lease_timeout,
        )
    except ConveyorError as exc:
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    # The worker's --pidfile/--detach handling; after a detach the pid is the daemon's.
    CommandLine([], None, logfile, pidfile or None, detach, False).start(first=True)
    scheduler.holder = default_holder()
    click.echo(f"beat {scheduler.holder}: {len(scheduler.entries)} entries", err=True)
    scheduler.run(stop)


def _print_status(app: Conveyor, schedule_file: str | None) -> None:
    try:
        from conveyor.beat.status import beat_status  # needs the `beat` extra

        found = beat_status(app, schedule_file)
    except ConveyorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"leader: {found.leader or 'none'}")
    for entry in found.entries:
        last = entry.last_run.isoformat(timespec="seconds") if entry.last_run else "never"
        following = entry.next_run.isoformat(timespec="seconds") if entry.next_run else "never"
        click.echo(f"{entry.name}: {entry.task} {entry.schedule}  last {last}  next {following}")
