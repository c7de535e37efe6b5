"""Task loggers: `get_task_logger(__name__)`, whose lines name the running task and its id.

Which task is running is the app's knowledge (`conveyor.app.context`), and utils sits below
the app: so the app hands this module a function that says it (`set_task_prefix`), instead
of this module importing the app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

TASK_LOGGER_PREFIX = "conveyor.task"
FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(task_prefix)s%(message)s"


def _no_task() -> str:
    return ""


_task_prefix: Callable[[], str] = _no_task


def set_task_prefix(describe: Callable[[], str]) -> None:
    """Use `describe()` ("tasks.add[<id>]: " inside a task, else "") as every line's prefix."""
    global _task_prefix
    _task_prefix = describe


class TaskContextFilter(logging.Filter):
    """Adds `task_prefix` ("tasks.add[<id>]: " inside a task, else "") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.task_prefix = _task_prefix()
        return True


def get_task_logger(name: str) -> logging.Logger:
    """A logger under ``conveyor.task``, formatted with the running task's name and id."""
    return logging.getLogger(f"{TASK_LOGGER_PREFIX}.{name}")


def setup_logging(level: str | int = "INFO", logfile: str | None = None) -> None:
    """Log to stderr (or `logfile`) with the worker's format (called by `conveyor worker`)."""
    handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler()
    handler.addFilter(TaskContextFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
