"""The `conveyor` command. Each sub-module adds one family of sub-commands.

The task commands (worker, call, result, ...) are imported with the group; every other
family is imported when one of its commands runs (or `--help` lists them), so that
`conveyor worker`, which an autoscaler starts for every worker it adds, does not import
beat's, the dashboard's, remote control's or the conformance runner's code.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from conveyor import __version__
from conveyor.cli.global_options import apply as apply_global_options
from conveyor.cli.global_options import global_options
from conveyor.cli.tasks import COMMANDS as TASK_COMMANDS

#: Sub-command name -> "module:attribute" of its click command.
LAZY_COMMANDS = {
    "beat": "conveyor.cli.beat:beat",
    "transports": "conveyor.cli.conformance:transports",
    "conformance": "conveyor.cli.conformance:conformance",
    "inspect": "conveyor.cli.control:inspect",
    "control": "conveyor.cli.control:control",
    "status": "conveyor.cli.control:status",
    "shell": "conveyor.cli.control:shell",
    "events": "conveyor.cli.monitoring:events",
    "dashboard": "conveyor.cli.monitoring:dashboard",
}


class LazyGroup(click.Group):
    """A click group that imports a command of LAZY_COMMANDS when it is first asked for
    (click's documented pattern: `list_commands` and `get_command`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="conveyor")
@click.option("-A", "--app", "app_path", default=None, help="Module (or module:attr) of the app.")
@global_options
@click.pass_context
def main(ctx: click.Context, app_path: str | None, **options: Any) -> None:
    """conveyor: a distributed task queue on a multi-broker transport layer."""
    apply_global_options(**options)
    ctx.obj = {"app_path": app_path}


for _command in TASK_COMMANDS:
    main.add_command(_command)
