"""The worker's Celery command-line options, so a deployment's `celery worker` line starts.

What each does (docs/worker.md has the table):

* ``-n NAME`` expands ``%h`` (host name), ``%n`` (its first label), ``%d`` (the domain)
  and ``%%``, as Celery does; ``-P prefork`` is the process pool.
* ``-X/--exclude-queues`` consumes the app's known queues but these.
* ``--autoscale MAX,MIN``: the threads or processes pool grows and shrinks between MIN
  and MAX slots by load (conveyor.worker.autoscale), in place of ``-c``.
* ``--max-tasks-per-child`` / ``--max-memory-per-child`` (KiB) replace a process-pool
  child after that many tasks / once its resident memory is above that.
* ``--time-limit`` / ``--soft-time-limit`` set task_time_limit / task_soft_time_limit.
* ``-O fair`` is accepted: conveyor's slots always take the next task as they free up.
* ``-f/--logfile``, ``--pidfile`` (refused if it names a live process), ``-D/--detach``.
* ``-I/--include`` imports more task modules, ``--purge`` empties the queues first.
* ``--without-gossip/--without-mingle/--without-heartbeat`` and ``-E`` are accepted and do
  nothing: conveyor workers do not gossip or mingle, and events are on unless
  worker_send_task_events is off.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from conveyor.cli import settings_env

F = Callable[..., Any]


def expand_hostname(template: str, host: str | None = None) -> str:
    """``worker1@%h`` -> ``worker1@box.example.com`` (%h, %n, %d, %% as Celery)."""
    host = host or socket.getfqdn() or socket.gethostname()
    name, _, domain = host.partition(".")
    out, index = [], 0
    while index < len(template):
        char = template[index]
        if char == "%" and index + 1 < len(template):
            code = template[index + 1]
            value = {"h": host, "n": name, "d": domain, "%": "%"}.get(code)
            if value is None:
                raise click.BadParameter(
                    f"unknown %{code} in {template!r}: use %h, %n, %d or %%", param_hint="-n"
                )
            out.append(value)
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def parse_autoscale(text: str) -> tuple[int, int]:
    """``"10,3"`` -> (10, 3); ``"10"`` -> (10, 0)."""
    parts = [part.strip() for part in text.split(",")]
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if not 1 <= len(numbers) <= 2 or min(numbers) < 0 or numbers[0] < 1:
        raise click.BadParameter(f"{text!r} is not MAX[,MIN]", param_hint="--autoscale")
    maximum = numbers[0]
    minimum = numbers[1] if len(numbers) == 2 else 0
    if minimum > maximum:
        raise click.BadParameter(f"MIN {minimum} is above MAX {maximum}", param_hint="--autoscale")
    return maximum, minimum


_OPTIONS: list[Callable[[F], F]] = [
    click.option("-X", "--exclude-queues", multiple=True, help="Queues not to consume."),
    click.option("--autoscale", default=None, help="MAX,MIN: grow and shrink the pool."),
    click.option("--max-tasks-per-child", type=click.IntRange(min=1), default=None),
    click.option("--max-memory-per-child", type=click.IntRange(min=1), default=None, help="KiB."),
    click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None),
    click.option("--soft-time-limit", type=click.FloatRange(min=0, min_open=True), default=None),
    click.option("-O", "optimization", type=click.Choice(["fair", "default"]), default=None),
    click.option("-f", "--logfile", default=None, help="Log to this file."),
    click.option("--pidfile", default=None, help="Write the worker's pid here."),
    click.option("-D", "--detach", is_flag=True, help="Run in the background."),
    click.option("-I", "--include", multiple=True, help="More task modules (comma separated)."),
    click.option("--purge", "purge_first", is_flag=True, help="Empty the queues first."),
    click.option("-E", "--task-events", is_flag=True, help="Accepted; events are on."),
    click.option("--without-gossip", is_flag=True, help="Accepted; no effect."),
    click.option("--without-mingle", is_flag=True, help="Accepted; no effect."),
    click.option("--without-heartbeat", is_flag=True, help="Accepted; no effect."),
]


def celery_worker_options(command: F) -> F:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


@dataclass
class CommandLine:
    """The Celery options of one `conveyor worker` line, checked."""

    exclude_queues: list[str]
    concurrency: int | None
    logfile: str | None
    pidfile: str | None
    detach: bool
    purge_first: bool
    autoscale: tuple[int, int] | None = None

    @classmethod
    def read(cls, options: dict[str, Any], concurrency: int | None) -> CommandLine:
        """Check the options and hand the settings to every process (settings_env)."""
        autoscale = parse_autoscale(options["autoscale"]) if options["autoscale"] else None
        if autoscale is not None:
            concurrency = autoscale[0]  # the Worker starts at MIN and grows up to it
        include = [m for value in options["include"] for m in value.split(",") if m]
        settings_env.add(
            task_time_limit=options["time_limit"],
            task_soft_time_limit=options["soft_time_limit"],
            worker_max_tasks_per_child=options["max_tasks_per_child"],
            worker_max_memory_per_child=options["max_memory_per_child"],
            include=include or None,
        )
        excluded = [q for value in options["exclude_queues"] for q in value.split(",") if q]
        return cls(
            excluded,
            concurrency,
            options["logfile"],
            options["pidfile"],
            options["detach"],
            options["purge_first"],
            autoscale,
        )

    def start(self, first: bool) -> None:
        """Detach and write the pidfile (only in the first process of the line)."""
        if not first:
            return
        if self.pidfile:
            _check_pidfile(self.pidfile)
        if self.detach:
            _detach(self.logfile)
        if self.pidfile:
            _write_pidfile(self.pidfile)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_pidfile(path: str) -> None:
    try:
        with open(path) as file:
            pid = int(file.read().strip() or 0)
    except FileNotFoundError:
        return
    except ValueError:
        pid = 0
    if pid and pid != os.getpid() and _alive(pid):
        raise click.ClickException(f"--pidfile {path}: process {pid} is running already")


def _write_pidfile(path: str) -> None:
    with open(path, "w") as file:
        file.write(f"{os.getpid()}\n")
    mine = os.getpid()

    def remove() -> None:
        if os.getpid() == mine:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    atexit.register(remove)


def _detach(logfile: str | None) -> None:
    """Become a daemon: fork twice, a new session, stdio to the log file or /dev/null."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    sys.stdout.flush()
    sys.stderr.flush()
    target = os.open(logfile or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(target, 1)
    os.dup2(target, 2)
