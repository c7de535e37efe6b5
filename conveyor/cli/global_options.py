"""Celery's global options, before the sub-command: ``-b/--broker``, ``--result-backend``,
``--config MODULE``, ``--workdir DIR``, ``-q/--quiet`` (``--version`` is the group's own).

The settings go to every process that loads the app (settings_env); ``--workdir`` is
entered before the app is imported, so ``-A proj`` is found from there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import click

from conveyor.app.loader import CONFIG_MODULE
from conveyor.cli import settings_env

F = Callable[..., Any]

_OPTIONS: list[Callable[[F], F]] = [
    click.option("-b", "--broker", default=None, help="Broker URL (over the app's)."),
    click.option("--result-backend", default=None, help="Result backend URL (over the app's)."),
    click.option("--config", "config_module", default=None, help="Module of settings to load."),
    click.option("--workdir", default=None, help="Change to this directory first."),
    click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors."),
]


def global_options(command: F) -> F:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def apply(
    broker: str | None,
    result_backend: str | None,
    config_module: str | None,
    workdir: str | None,
    quiet: bool,
) -> None:
    if workdir:
        try:
            os.chdir(workdir)
        except OSError as exc:
            raise click.BadParameter(str(exc), param_hint="--workdir") from exc
    settings_env.add(
        broker_url=broker, result_backend=result_backend, **{CONFIG_MODULE: config_module}
    )
    if quiet:
        logging.getLogger().setLevel(logging.WARNING)
