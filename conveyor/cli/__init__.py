"""The `conveyor` command. Each sub-module adds one family of sub-commands."""

from __future__ import annotations

from typing import Any

import click

from conveyor import __version__
from conveyor.cli.beat import beat
from conveyor.cli.conformance import conformance, transports
from conveyor.cli.control import COMMANDS as CONTROL_COMMANDS
from conveyor.cli.global_options import apply as apply_global_options
from conveyor.cli.global_options import global_options
from conveyor.cli.monitoring import COMMANDS as MONITORING_COMMANDS
from conveyor.cli.tasks import COMMANDS as TASK_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="conveyor")
@click.option("-A", "--app", "app_path", default=None, help="Module (or module:attr) of the app.")
@global_options
@click.pass_context
def main(ctx: click.Context, app_path: str | None, **options: Any) -> None:
    """conveyor: a distributed task queue on a multi-broker transport layer."""
    apply_global_options(**options)
    ctx.obj = {"app_path": app_path}


main.add_command(transports)
main.add_command(conformance)
main.add_command(beat)
for _command in TASK_COMMANDS + CONTROL_COMMANDS + MONITORING_COMMANDS:
    main.add_command(_command)
