"""Celery's worker and logging settings: worker_log_format, worker_task_log_format,
worker_redirect_stdouts(_level), worker_hijack_root_logger, worker_enable_remote_control."""

from __future__ import annotations

import io
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.core.errors import ConfigurationError
from conveyor.testing.waiting import wait_until
from conveyor.utils.redirect import LoggingProxy, redirect
from conveyor.worker import logs
from conveyor.worker.worker import Worker
from tests.celery_worker.logging_app import shout
from tests.worker.command import LoggedWorker

APP_PATH = "tests.celery_worker.logging_app"


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_a_worker_logs_with_celerys_formats_and_logs_what_tasks_print(
    redis_url: str, pool: str, tmp_path: Path
) -> None:
    """Into the `-f` file, from the worker and from its process-pool children alike."""
    queue = f"logging-{uuid.uuid4().hex[:12]}"
    client = Conveyor("logging-client", broker=redis_url, backend=redis_url)
    logfile = tmp_path / "worker.log"
    args = ["-Q", queue, "-c", "1", "-P", pool, "-l", "info", "-f", str(logfile)]
    worker = LoggedWorker(APP_PATH, redis_url, args, CONVEYOR_WORKER_PROCESSES="1")
    try:
        word = uuid.uuid4().hex[:8]
        result = client.send_task(shout.name, (word,), queue=queue)
        assert result.get(timeout=60) == word
        wanted = {
            f"LOG WARNING conveyor.redirected: printed {word}\n",
            f"TASK INFO {shout.name}[{result.id}]: logged {word}\n",
        }

        def lines() -> list[str]:
            return logfile.read_text().splitlines(keepends=True) if logfile.exists() else []

        assert wait_until(lambda: wanted <= set(lines()), 30), (lines(), worker.lines)
        assert any(line.startswith("LOG INFO conveyor.worker: ") for line in lines())
    finally:
        worker.stop()
        client.transport.delete(queue)
        client.close()


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root and task loggers, and sys.stdout/stderr, restored after the test."""
    root, task = logging.getLogger(), logging.getLogger("conveyor.task")
    saved = (list(root.handlers), root.level, list(task.handlers), task.propagate)
    streams = sys.stdout, sys.stderr
    yield root
    root.handlers[:], task.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    task.propagate = saved[3]
    sys.stdout, sys.stderr = streams


def test_hijack_root_logger_false_keeps_the_root_handlers(
    app: Conveyor, root_logging: logging.Logger
) -> None:
    app.conf.worker_redirect_stdouts = False
    mine = logging.NullHandler()
    root_logging.handlers[:] = [mine]
    app.conf.worker_hijack_root_logger = False
    logs.setup("info", conf=app.conf)
    assert root_logging.handlers == [mine]
    app.conf.worker_hijack_root_logger = True
    logs.setup("info", conf=app.conf)
    assert mine not in root_logging.handlers and len(root_logging.handlers) == 1


def test_redirected_streams_log_lines_and_never_loop(root_logging: logging.Logger) -> None:
    original = io.StringIO()
    logger = logging.getLogger("tests.redirect")
    proxy = LoggingProxy(logger, logging.WARNING, original)
    handler = logging.StreamHandler(proxy)  # a handler writing into the redirected stream
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        proxy.write("one\ntw")
        proxy.write("o\n\n")
        proxy.flush()
    finally:
        logger.removeHandler(handler)
    assert original.getvalue() == "WARNING one\nWARNING two\n"
    with pytest.raises(ConfigurationError, match="LOUD"):
        redirect("LOUD")


def test_remote_control_off_answers_nothing(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    app.conf.worker_enable_remote_control = False
    start_worker(hostname="off@host")
    app.conf.worker_enable_remote_control = True
    start_worker(hostname="on@host")
    replies: dict[str, Any] = {}
    wait_until(lambda: bool(replies.update(app.control.inspect(timeout=0.3).ping()) or replies), 5)
    assert replies == {"on@host": {"ok": "pong"}}, "the channel works; only one answers"
    assert app.control.inspect(timeout=0.5, destination=["off@host"]).ping() in ({}, None)
