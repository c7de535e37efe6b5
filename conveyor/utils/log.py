"""Task loggers: `get_task_logger(__name__)`, whose lines name the running task and its id.

Which task is running is the app's knowledge (`conveyor.app.context`), and utils sits below
the app: so the app hands this module a function that says it (`set_task_context`), instead
of this module importing the app.

Every record through conveyor's handlers carries `task_prefix` ("tasks.add[<id>]: " inside
a task, else ""), and Celery's `task_name` and `task_id` ("???" outside a task, as Celery),
so a `worker_log_format` or `worker_task_log_format` written for Celery works.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TextIO

from conveyor.utils.redirect import LoggingProxy

TASK_LOGGER_PREFIX = "conveyor.task"
FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(task_prefix)s%(message)s"
NO_TASK = "???"  # task_name and task_id outside a task (Celery's)


def _no_task() -> tuple[str, str] | None:
    return None


_running: Callable[[], tuple[str, str] | None] = _no_task


def set_task_context(running: Callable[[], tuple[str, str] | None]) -> None:
    """Use `running()` (the running task's (name, id) on this thread, or None) for every
    line's task fields."""
    global _running
    _running = running


class TaskContextFilter(logging.Filter):
    """Adds `task_prefix`, `task_name` and `task_id` to every record (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = _running()
        record.task_prefix = f"{task[0]}[{task[1]}]: " if task else ""
        record.task_name, record.task_id = task or (NO_TASK, NO_TASK)
        return True


def get_task_logger(name: str) -> logging.Logger:
    """A logger under ``conveyor.task``, formatted with the running task's name and id."""
    return logging.getLogger(f"{TASK_LOGGER_PREFIX}.{name}")


def _stream() -> TextIO:
    """stderr as it was before any redirection (a handler writing into the redirected
    stderr would log its own lines)."""
    stream = sys.stderr
    return stream.original if isinstance(stream, LoggingProxy) else stream


def _handler(logfile: str | None, format: str) -> logging.Handler:
    handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(_stream())
    handler.addFilter(TaskContextFilter())
    handler.setFormatter(logging.Formatter(format))
    return handler


def setup_logging(
    level: str | int = "INFO",
    logfile: str | None = None,
    *,
    format: str | None = None,
    task_format: str | None = None,
    hijack: bool = True,
) -> None:
    """Log to stderr (or `logfile`) with the worker's format (called by `conveyor worker`).

    Celery's settings, passed in by the worker: `format` (worker_log_format) for every line,
    `task_format` (worker_task_log_format) for the task loggers' lines, which then get a
    handler of their own instead of the root's; `hijack=False` (worker_hijack_root_logger)
    keeps the root logger's handlers when it has any, as Celery does.
    """
    root = logging.getLogger()
    task_logger = logging.getLogger(TASK_LOGGER_PREFIX)
    if hijack or not root.handlers:
        root.handlers[:] = [_handler(logfile, format or FORMAT)]
    if hijack:
        task_logger.handlers[:] = []
        task_logger.propagate = True
    if task_format:
        task_logger.handlers[:] = [_handler(logfile, task_format)]
        task_logger.propagate = False
    root.setLevel(level.upper() if isinstance(level, str) else level)
