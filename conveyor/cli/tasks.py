"""Task commands: worker, call, result, purge, queues, dead (all need -A)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from conveyor.app.base import Conveyor
from conveyor.app.loader import load_app
from conveyor.cli.worker_metrics import worker_metrics_options
from conveyor.cli.worker_options import CommandLine, celery_worker_options, expand_hostname
from conveyor.core.errors import ConveyorError


def _app(ctx: click.Context) -> Conveyor:
    path = (ctx.obj or {}).get("app_path")
    if not path:
        raise click.UsageError(
            "name the app with -A module[:attribute], e.g. conveyor -A tasks worker"
        )
    try:
        return load_app(path)
    except ConveyorError as exc:
        raise click.ClickException(str(exc)) from exc


def _split(values: tuple[str, ...]) -> list[str]:
    """-Q a,b -Q c -> [a, b, c]."""
    return [name for value in values for name in value.split(",") if name]


def _json_option(text: str, kind: type, what: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=what) from None
    if not isinstance(value, kind):
        raise click.BadParameter(f"must be a JSON {kind.__name__}", param_hint=what)
    return value


def _known_queues(app: Conveyor) -> list[str]:
    """The default queue, every task's own queue and the dict routes' queues."""
    found = {app.conf.task_default_queue}
    found.update(task.queue for task in app.tasks.values() if task.queue)
    routes = app.conf.task_routes
    for route in routes if isinstance(routes, (list, tuple)) else [routes]:
        if isinstance(route, dict):
            for target in route.values():
                found.add(target if isinstance(target, str) else target.get("queue"))
    return sorted(q for q in found if q)


@click.command()
@click.option("-l", "--loglevel", default="INFO", show_default=True, help="Logging level.")
@click.option("-c", "--concurrency", type=int, default=None, help="Pool size (default: CPUs).")
@click.option(
    "-P",
    "--pool",
    type=click.Choice(["threads", "processes", "prefork", "solo"]),
    default=None,
    help="prefork is the processes pool.",
)
@click.option("-Q", "--queues", multiple=True, help="Queues to consume (comma separated).")
@click.option(
    "--prefetch-multiplier", type=int, default=None, help="Prefetch = this x concurrency."
)
@click.option("-n", "--hostname", default=None, help="Worker name; %h, %n, %d expand.")
@click.option("--shutdown-timeout", type=float, default=None, help="Warm shutdown deadline (s).")
@click.option("-B", "--beat", "with_beat", is_flag=True, help="Run beat inside this worker.")
@celery_worker_options
@worker_metrics_options
@click.pass_context
def worker(
    ctx: click.Context,
    loglevel: str,
    concurrency: int | None,
    pool: str | None,
    queues: tuple[str, ...],
    prefetch_multiplier: int | None,
    hostname: str | None,
    shutdown_timeout: float | None,
    with_beat: bool,
    **celery_options: Any,
) -> None:
    """Run a worker until SIGTERM (warm shutdown; a second signal is cold)."""
    from conveyor.worker.logs import setup as setup_logging
    from conveyor.worker.siblings import is_sibling
    from conveyor.worker.worker import Worker

    line = CommandLine.read(celery_options, concurrency)
    line.start(first=not is_sibling())
    app = _app(ctx)
    consumed = [q for q in _split(queues) or _known_queues(app) if q not in line.exclude_queues]
    if line.purge_first and not is_sibling():
        for name in consumed:
            click.echo(f"{name}: {app.transport.purge(name)} removed")
        app.close()  # no connection open when the worker starts its siblings (a fork)
    # After the app is loaded: its worker_log_format, worker_redirect_stdouts, ... apply.
    setup_logging(loglevel, line.logfile, app.conf)
    embedded = None
    try:
        if with_beat and not is_sibling():  # one beat per command line, not per process
            from conveyor.beat.service import EmbeddedBeat  # needs the `beat` extra

            embedded = EmbeddedBeat(app)
            embedded.start()
        Worker(
            app,
            queues=consumed if (queues or line.exclude_queues) else None,
            concurrency=line.concurrency,
            pool=pool,
            prefetch_multiplier=prefetch_multiplier,
            hostname=expand_hostname(hostname) if hostname else None,
            app_path=ctx.obj["app_path"],
            shutdown_timeout=shutdown_timeout,
            autoscale=line.autoscale,
        ).run()
    except ConveyorError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if embedded is not None:
            embedded.stop()


@click.command()
@click.argument("name")
@click.option("-a", "--args", "args_text", default="[]", help="Positional arguments (JSON list).")
@click.option("-k", "--kwargs", "kwargs_text", default="{}", help="Keyword arguments (JSON).")
@click.option("--countdown", type=float, default=None, help="Seconds before it may run.")
@click.option("--eta", default=None, help="When it may run (ISO 8601).")
@click.option("--expires", default=None, help="Seconds from now, or an ISO 8601 time.")
@click.option("--queue", "-Q", default=None, help="Queue (default: the task's route).")
@click.pass_context
def call(
    ctx: click.Context,
    name: str,
    args_text: str,
    kwargs_text: str,
    countdown: float | None,
    eta: str | None,
    expires: str | None,
    queue: str | None,
) -> None:
    """Send task NAME and print its id."""
    app = _app(ctx)
    args = _json_option(args_text, list, "--args")
    kwargs = _json_option(kwargs_text, dict, "--kwargs")
    when = _moment(eta, "--eta")
    until: float | datetime | None = None
    if expires is not None:
        try:
            until = float(expires)
        except ValueError:
            until = _moment(expires, "--expires")
    try:
        result = app.send_task(
            name, args, kwargs, countdown=countdown, eta=when, expires=until, queue=queue
        )
    except ConveyorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.id)


def _moment(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint=what) from None


@click.command()
@click.argument("task_id")
@click.option("--wait", is_flag=True, help="Wait until the task is ready.")
@click.option("--timeout", type=float, default=None, help="With --wait: give up after this.")
@click.option("-t", "--traceback", "only_traceback", is_flag=True, help="Print the traceback.")
@click.pass_context
def result(
    ctx: click.Context, task_id: str, wait: bool, timeout: float | None, only_traceback: bool
) -> None:
    """Print a task's state and result (as JSON), then its traceback if it failed;
    with --traceback only the traceback, as Celery's."""
    app = _app(ctx)
    handle = app.AsyncResult(task_id)
    try:
        if wait:
            handle.get(timeout=timeout, propagate=False)
        state = handle.state
        record = app.backend.get(task_id)
    except (ConveyorError, TimeoutError) as exc:
        raise click.ClickException(str(exc)) from exc
    if only_traceback:
        if record is not None and record.traceback:
            click.echo(record.traceback.rstrip())
        return
    click.echo(state)
    if record is not None and record.result is not None:
        click.echo(json.dumps(record.result))
    if record is not None and record.traceback:
        click.echo(record.traceback.rstrip())


@click.command()
@click.option("-Q", "--queues", multiple=True, help="Queues (default: those the app names).")
@click.option("-X", "--exclude-queues", multiple=True, help="Queues to leave alone.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(
    ctx: click.Context, queues: tuple[str, ...], exclude_queues: tuple[str, ...], force: bool
) -> None:
    """Remove the ready messages of the queues (delayed and held ones stay)."""
    app = _app(ctx)
    excluded = _split(exclude_queues)
    names = [q for q in _split(queues) or _known_queues(app) if q not in excluded]
    if not force:
        click.confirm(f"Remove every ready message from {', '.join(names)}?", abort=True)
    for name in names:
        click.echo(f"{name}: {app.transport.purge(name)} removed")


@click.command()
@click.option("-Q", "--queues", multiple=True, help="Queues (default: those the app names).")
@click.pass_context
def queues(ctx: click.Context, queues: tuple[str, ...]) -> None:
    """Print each queue's ready size and dead-letter count."""
    app = _app(ctx)
    click.echo(f"{'queue':<30} {'ready':>8} {'dead':>8}")
    for name in _split(queues) or _known_queues(app):
        dead = len(app.transport.dead_letters(name, limit=10_000))
        click.echo(f"{name:<30} {app.transport.size(name):>8} {dead:>8}")


@click.group()
def dead() -> None:
    """List or replay dead letters."""


@dead.command("list")
@click.option("-Q", "--queue", required=True)
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_context
def dead_list(ctx: click.Context, queue: str, limit: int) -> None:
    """Print the oldest dead letters of a queue with their reasons."""
    app = _app(ctx)
    for letter in app.transport.dead_letters(queue, limit=limit):
        task_id = letter.message.correlation_id or "-"
        click.echo(
            f"{letter.message.id}  task={task_id}  deliveries={letter.delivery_count}  "
            f"reason={letter.reason}"
        )


@dead.command("replay")
@click.option("-Q", "--queue", required=True)
@click.option("--id", "ids", multiple=True, help="Message ids to replay (default: all).")
@click.pass_context
def dead_replay(ctx: click.Context, queue: str, ids: tuple[str, ...]) -> None:
    """Move dead letters back to their queue."""
    app = _app(ctx)
    count = app.transport.replay_dead_letters(queue, ids=list(ids) or None)
    click.echo(f"{count} replayed")


COMMANDS = (worker, call, result, purge, queues, dead)
