from __future__ import annotations

import logging

import pytest

from conveyor.app import context
from conveyor.utils.log import TaskContextFilter, get_task_logger


def test_task_logger_lines_name_the_running_task(caplog: pytest.LogCaptureFixture) -> None:
    logger = get_task_logger("tests.sample")
    assert logger.name == "conveyor.task.tests.sample"
    caplog.handler.addFilter(TaskContextFilter())
    caplog.handler.setFormatter(logging.Formatter("%(task_prefix)s%(message)s"))
    with caplog.at_level(logging.INFO):
        logger.info("outside")
        with context.running(context.Context(id="abc", task="tasks.add")):
            logger.info("inside")
    assert caplog.text.splitlines() == ["outside", "tasks.add[abc]: inside"]
