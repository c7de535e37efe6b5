"""The worker's logging set-up, with Celery's logging signals and settings around it.

When anyone is connected to setup_logging, logging is left to them, as Celery does;
otherwise conveyor's own set-up runs (conveyor.utils.log) with the app's
worker_log_format, worker_task_log_format and worker_hijack_root_logger, then
after_setup_logger and after_setup_task_logger let receivers add handlers or formats, and
with worker_redirect_stdouts (Celery's default: on) what tasks print is logged at
worker_redirect_stdouts_level (conveyor.utils.redirect). Without the app's settings (a
program calling `setup` itself) nothing is redirected.
"""

from __future__ import annotations

import logging
from typing import Any

from conveyor import signals
from conveyor.utils.log import FORMAT, TASK_LOGGER_PREFIX, setup_logging
from conveyor.utils.redirect import redirect


def setup(loglevel: str | int = "INFO", logfile: str | None = None, conf: Any = None) -> None:
    """Set up the worker's logging; `conf` is the app's settings (app.conf)."""
    level = loglevel.upper() if isinstance(loglevel, str) else loglevel
    log_format = (conf.worker_log_format if conf is not None else None) or FORMAT
    settings = {"loglevel": level, "logfile": logfile, "format": log_format, "colorize": False}
    if signals.setup_logging.receivers:
        signals.setup_logging.send(sender=None, **settings)
        return
    setup_logging(
        level,
        logfile,
        format=log_format,
        task_format=None if conf is None else conf.worker_task_log_format,
        hijack=True if conf is None else bool(conf.worker_hijack_root_logger),
    )
    signals.after_setup_logger.send(sender=None, logger=logging.getLogger(), **settings)
    task_logger = logging.getLogger(TASK_LOGGER_PREFIX)
    signals.after_setup_task_logger.send(sender=None, logger=task_logger, **settings)
    if conf is not None and conf.worker_redirect_stdouts:
        redirect(conf.worker_redirect_stdouts_level)
