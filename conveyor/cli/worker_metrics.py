"""The worker command's monitoring options: `--metrics-port N` and `--metrics-address`
(see conveyor.monitoring.worker_metrics)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from conveyor.app.loader import load_app

F = Callable[..., Any]


def worker_metrics_options(command: F) -> F:
    """`--metrics-port N` and `--metrics-address` for the worker command (a decorator, so
    the worker command itself only names it)."""

    @click.option(
        "--metrics-port",
        type=click.IntRange(1, 65535),
        default=None,
        help="Serve Prometheus metrics of this worker on this port.",
    )
    @click.option(
        "--metrics-address", default="127.0.0.1", show_default=True, help="Address to bind."
    )
    @functools.wraps(command)
    def wrapper(*args: Any, metrics_port: int | None, metrics_address: str, **kwargs: Any) -> Any:
        if metrics_port is not None:
            from conveyor.monitoring import worker_metrics
            from conveyor.worker.siblings import is_sibling

            first = not is_sibling()
            if first:
                worker_metrics.prepare_processes()
            try:
                app = load_app(click.get_current_context().obj["app_path"])
                queues = [q for v in kwargs.get("queues") or () for q in v.split(",") if q]
                queues = queues or [app.conf.task_default_queue]
                worker_metrics.install(app, metrics_port, metrics_address, queues, first=first)
            except ImportError as exc:
                raise click.ClickException(
                    f"--metrics-port needs the metrics extra: pip install 'conveyor[metrics]' "
                    f"({exc})"
                ) from None
        return command(*args, **kwargs)

    return wrapper
