"""Task loggers: `get_task_logger(__name__)`, whose lines name the running task and its id."""

from __future__ import annotations

import logging

from conveyor.app import context

TASK_LOGGER_PREFIX = "conveyor.task"
FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(task_prefix)s%(message)s"


class TaskContextFilter(logging.Filter):
    """Adds `task_prefix` ("tasks.add[<id>]: " inside a task, else "") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        running = context.current()
        record.task_prefix = f"{running.task}[{running.id}]: " if running and running.id else ""
        return True


def get_task_logger(name: str) -> logging.Logger:
    """A logger under ``conveyor.task``, formatted with the running task's name and id."""
    return logging.getLogger(f"{TASK_LOGGER_PREFIX}.{name}")


def setup_logging(level: str | int = "INFO") -> None:
    """Log to stderr with the worker's format (called by `conveyor worker`)."""
    handler = logging.StreamHandler()
    handler.addFilter(TaskContextFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
