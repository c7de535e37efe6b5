"""`start_worker(app)`: an in-process worker for the length of a ``with`` block, as
Celery's ``celery.contrib.testing.worker.start_worker``.

The worker is ready when the block starts (it has reached its queues), so a task sent in
the block is kept; leaving the block stops it warm. Tasks defined after it started are
found too: the worker looks a task up when its message arrives (``worker.reload()``, which
Celery's tests call after defining one, is there and does nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conveyor.app.base import Conveyor
from conveyor.worker.worker import Worker


class TestWorker(Worker):
    """A Worker with the extras Celery's test worker has."""

    __test__ = False  # not a pytest test class

    def reload(self) -> None:
        """Celery re-reads the task registry here; conveyor reads it for each message."""

    def ping(self) -> dict[str, Any]:
        return {"ok": "pong"}


@contextmanager
def start_worker(
    app: Conveyor,
    concurrency: int = 1,
    pool: str = "solo",
    loglevel: str | int = "WARNING",
    logfile: str | None = None,
    perform_ping_check: bool = True,
    ping_task_timeout: float = 10.0,
    shutdown_timeout: float = 10.0,
    **kwargs: Any,
) -> Iterator[TestWorker]:
    """Run a worker for `app` in this process (threads; the consumer is a thread too).

    `perform_ping_check` and `ping_task_timeout` are accepted for Celery's signature: the
    worker is ready on return without a ping task. Other keyword arguments go to Worker
    (queues=, hostname=, prefetch_multiplier=).
    """
    if pool == "prefork":
        pool = "processes"
    logger = logging.getLogger("conveyor")
    level, handler = logger.level, logging.FileHandler(logfile) if logfile else None
    logger.setLevel(loglevel.upper() if isinstance(loglevel, str) else loglevel)
    if handler is not None:
        logger.addHandler(handler)
    worker = TestWorker(
        app, concurrency=concurrency, pool=pool, shutdown_timeout=shutdown_timeout, **kwargs
    )
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
        logger.setLevel(level)  # the test's logging as it was
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()
