"""Errors that used to be silent or bare (issue 12, defect 9): an empty queue name, a tasks
module with a SyntaxError, the threads pool's hard time limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from conveyor import Conveyor
from conveyor.app.exceptions import TimeLimitExceeded
from conveyor.cli import main
from conveyor.core.errors import InvalidQueueName
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


def test_an_empty_queue_name_is_refused_not_sent_to_the_default_queue(app: Conveyor) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(InvalidQueueName, match="invalid queue name ''"):
        add.apply_async((1, 2), queue="")
    assert app.transport.size("default") == 0, "nothing was sent"


def test_a_tasks_module_with_a_syntax_error_is_one_clear_cli_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_tasks.py").write_text("from conveyor import Conveyor\napp = Conveyor(\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(main, ["-A", "broken_tasks", "worker"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "broken_tasks.py" in result.output and "line 2" in result.output, result.output
    assert "SyntaxError" in result.output, result.output
    assert not isinstance(result.exception, SyntaxError)


def test_the_threads_pool_hard_time_limit_says_what_it_is(
    app: Conveyor, start_worker: StartWorker
) -> None:
    @app.task(time_limit=0.2)
    def spin() -> None:
        while True:
            time.sleep(0.01)

    start_worker()
    with pytest.raises(TimeLimitExceeded, match=r"hard time limit \(0.2 s\) exceeded"):
        spin.delay().get(timeout=5)
