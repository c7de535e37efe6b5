"""A task that kills its process ends as a FAILURE naming the exit code or signal, not as
a "max deliveries" dead letter with nothing stored; a task may opt into a retry (issue 12,
defect 4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.exceptions import WorkerLostError
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker
from tests.faults import crashing_tasks

APP_PATH = "tests.faults.crashing_tasks"


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    url = f"sqlite:///{tmp_path}/conveyor.db"
    monkeypatch.setenv("CONVEYOR_BROKER_URL", url)
    monkeypatch.setenv("CONVEYOR_RESULT_BACKEND", url)
    app = crashing_tasks.app
    app.conf.update(broker_url=url, result_backend=url)
    worker = Worker(app, pool="processes", concurrency=1, app_path=APP_PATH, shutdown_timeout=5)
    worker.start()
    yield worker
    worker.stop()
    app.close()


def test_a_task_that_exits_its_process_is_a_failure_naming_the_exit_code(
    worker: Worker,
) -> None:
    result = crashing_tasks.exit_hard.delay(7)
    with pytest.raises(WorkerLostError, match="exit code 7"):
        result.get(timeout=30)
    assert (
        crashing_tasks.kill_self.delay()
        .get(timeout=30, propagate=False)
        .args[0]
        .endswith("signal 9 (SIGKILL)")
    )
    assert crashing_tasks.add.delay(2, 2).get(timeout=30) == 4, "a fresh child runs on"
    transport = worker.app.transport
    assert wait_until(lambda: transport.size("default") == 0, 5)
    assert transport.dead_letters("default") == []


def test_a_task_may_opt_into_a_retry_when_its_process_dies(worker: Worker) -> None:
    assert crashing_tasks.exit_once.delay().get(timeout=30) == 2
