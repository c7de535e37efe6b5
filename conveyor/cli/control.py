"""Commands that talk to live workers: inspect, control, status; and shell.

As Celery's: ``conveyor -A proj inspect active``, ``conveyor -A proj control rate_limit
proj.tasks.add 10/s``, ``conveyor -A proj status``. ``-d/--destination`` names the workers
(comma separated), ``-t/--timeout`` how long to wait for answers, ``-j/--json`` prints one
JSON object instead of a line per worker. They need a transport with broadcast.
"""

from __future__ import annotations

import code
import json
from typing import Any

import click

from conveyor.app.base import Conveyor
from conveyor.cli.tasks import _app, _split

INSPECTIONS = (
    "ping",
    "registered",
    "active",
    "scheduled",
    "reserved",
    "revoked",
    "stats",
    "active_queues",
    "query_task",
    "conf",
    "report",
)


def _live(ctx: click.Context) -> Conveyor:
    app = _app(ctx)
    if not app.transport.capabilities.broadcast:
        raise click.ClickException(
            f"{type(app.transport).__name__} has no broadcast capability, so live workers "
            "cannot be asked; use `conveyor queues` and the result backend instead"
        )
    return app


def _show(replies: dict[str, Any], as_json: bool, timeout: float) -> None:
    if not replies:
        raise click.ClickException(f"no worker replied within {timeout} s")
    if as_json:
        click.echo(json.dumps(replies, sort_keys=True))
        return
    for hostname, reply in sorted(replies.items()):
        click.echo(f"{hostname}: {json.dumps(reply)}")


def _common(command: Any) -> Any:
    command = click.option("-d", "--destination", multiple=True, help="Worker names.")(command)
    command = click.option("-t", "--timeout", type=float, default=1.0, show_default=True)(command)
    return click.option("-j", "--json", "as_json", is_flag=True, help="One JSON object.")(command)


@click.command()
@click.argument("what", type=click.Choice(INSPECTIONS))
@click.argument("ids", nargs=-1)
@_common
@click.pass_context
def inspect(
    ctx: click.Context,
    what: str,
    ids: tuple[str, ...],
    destination: tuple[str, ...],
    timeout: float,
    as_json: bool,
) -> None:
    """Ask live workers: ping, registered, active, scheduled, reserved, revoked, stats,
    active_queues, query_task ID..., conf, report."""
    app = _live(ctx)
    inspector = app.control.inspect(timeout=timeout, destination=_split(destination) or None)
    if what == "query_task":
        if not ids:
            raise click.UsageError("query_task needs one or more task ids")
        replies = inspector.query_task(*ids)
    else:
        replies = getattr(inspector, what)()
    _show(replies, as_json, timeout)


def _number(text: str | None, what: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number", param_hint=what) from None


@click.command()
@click.argument(
    "command",
    type=click.Choice(
        [
            "revoke",
            "rate_limit",
            "time_limit",
            "shutdown",
            "pool_grow",
            "pool_shrink",
            "autoscale",
            "add_consumer",
            "cancel_consumer",
        ]
    ),
)
@click.argument("arguments", nargs=-1)
@click.option("--terminate", is_flag=True, help="revoke: stop it if it runs.")
@click.option("--signal", "signal_name", default="SIGTERM", help="revoke --terminate: signal.")
@_common
@click.pass_context
def control(
    ctx: click.Context,
    command: str,
    arguments: tuple[str, ...],
    terminate: bool,
    signal_name: str,
    destination: tuple[str, ...],
    timeout: float,
    as_json: bool,
) -> None:
    """Tell live workers: revoke ID... [--terminate], rate_limit TASK RATE, time_limit TASK
    SOFT [HARD], shutdown, pool_grow [N], pool_shrink [N], autoscale MAX MIN, add_consumer QUEUE,
    cancel_consumer QUEUE."""
    app = _app(ctx)
    hosts = _split(destination) or None
    control = app.control
    if command == "revoke":
        if not arguments:
            raise click.UsageError("revoke needs one or more task ids")
        if terminate:
            _live(ctx)
        control.revoke(list(arguments), destination=hosts, terminate=terminate, signal=signal_name)
        click.echo(f"revoked {len(arguments)} task(s)")
        return
    app = _live(ctx)
    options: dict[str, Any] = {"destination": hosts, "reply": True, "timeout": timeout}
    if command == "rate_limit":
        if len(arguments) != 2:
            raise click.UsageError("rate_limit needs TASK and RATE (e.g. 10/s)")
        replies = control.rate_limit(arguments[0], arguments[1], **options)
    elif command == "time_limit":
        if len(arguments) not in (2, 3):
            raise click.UsageError("time_limit needs TASK SOFT [HARD]")
        soft = _number(arguments[1], "SOFT")
        hard = _number(arguments[2] if len(arguments) == 3 else None, "HARD")
        replies = control.time_limit(arguments[0], soft, hard, **options)
    elif command in ("pool_grow", "pool_shrink"):
        n = int(_number(arguments[0], "N") or 1) if arguments else 1
        replies = getattr(control, command)(n, **options)
    elif command == "autoscale":
        if len(arguments) != 2:
            raise click.UsageError("autoscale needs MAX and MIN")
        maximum = int(_number(arguments[0], "MAX") or 0)
        minimum = int(_number(arguments[1], "MIN") or 0)
        replies = control.autoscale(maximum, minimum, **options)
    elif command in ("add_consumer", "cancel_consumer"):
        if len(arguments) != 1:
            raise click.UsageError(f"{command} needs one QUEUE")
        replies = getattr(control, command)(arguments[0], **options)
    else:
        replies = control.shutdown(**options)
    _show({host: r for one in replies for host, r in one.items()}, as_json, timeout)


@click.command()
@click.option("-t", "--timeout", type=float, default=1.0, show_default=True)
@click.pass_context
def status(ctx: click.Context, timeout: float) -> None:
    """List the workers that answer a ping."""
    app = _live(ctx)
    replies = app.control.inspect(timeout=timeout).ping()
    if not replies:
        raise click.ClickException(f"no worker replied within {timeout} s")
    for hostname in sorted(replies):
        click.echo(f"{hostname}: OK")
    click.echo(f"\n{len(replies)} node{'s' if len(replies) != 1 else ''} online.")


@click.command()
@click.pass_context
def shell(ctx: click.Context) -> None:
    """A Python shell with `app` and every task by its short name, as Celery's shell."""
    app = _app(ctx)
    names: dict[str, Any] = {"app": app, "celery": app}
    for name, task in app.tasks.items():
        names.setdefault(name.rsplit(".", 1)[-1], task)
    code.interact(banner=f"conveyor shell: app={app!r}, {len(app.tasks)} tasks", local=names)
