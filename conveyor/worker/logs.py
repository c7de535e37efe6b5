"""The worker's logging set-up, with Celery's logging signals around it.

When anyone is connected to setup_logging, logging is left to them, as Celery does;
otherwise conveyor's own set-up runs (conveyor.utils.log), then after_setup_logger and
after_setup_task_logger let receivers add handlers or formats.
"""

from __future__ import annotations

import logging

from conveyor import signals
from conveyor.utils.log import FORMAT, TASK_LOGGER_PREFIX, setup_logging


def setup(loglevel: str | int = "INFO", logfile: str | None = None) -> None:
    level = loglevel.upper() if isinstance(loglevel, str) else loglevel
    settings = {"loglevel": level, "logfile": logfile, "format": FORMAT, "colorize": False}
    if signals.setup_logging.receivers:
        signals.setup_logging.send(sender=None, **settings)
        return
    setup_logging(level, logfile)
    signals.after_setup_logger.send(sender=None, logger=logging.getLogger(), **settings)
    task_logger = logging.getLogger(TASK_LOGGER_PREFIX)
    signals.after_setup_task_logger.send(sender=None, logger=task_logger, **settings)
