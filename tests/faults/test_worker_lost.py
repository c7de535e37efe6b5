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
from tests.faults.conftest import tier
from tests.faults.harness import KILL_WORKER, assert_passes, row

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


@pytest.mark.parametrize("pool", tier(["threads"], ["solo"]))  # the same death, either pool
def test_a_task_that_kills_a_threads_worker_ends_as_a_failure_at_the_budget(
    pool: str, tmp_path: Path
) -> None:
    """Under the threads (and solo) pool the task takes the whole worker down, so nobody is
    left to store its outcome; its message comes back after the lease. Each redelivery
    runs it again (at-least-once) until the last allowed one, which finds the run before
    it started by a dead worker: it stores WorkerLostError and settles the message, so
    `get()` raises at once instead of waiting while the task sits in the dead letters."""
    deliveries = 2  # one worker death, then the last delivery: the shortest case
    url = f"sqlite:///{tmp_path}/conveyor.db"
    broker = f"{url}?lease_timeout=1&max_deliveries={deliveries}"
    with row(f"lost-{pool}", broker, url, tmp_path, concurrency=1) as made:
        made.start_worker(pool=pool, prefetch_multiplier=1)
        result = made.app.send_task(KILL_WORKER, ("poison",), queue=made.queue)
        deaths = 0

        def supervise() -> bool:
            nonlocal deaths
            if made.workers[-1].process.poll() is not None:
                deaths += 1
                made.start_worker(pool=pool, prefetch_multiplier=1)
            return result.ready()

        assert wait_until(supervise, 60, interval=0.1), made.workers[-1].output()
        with pytest.raises(WorkerLostError, match="worker lost while running"):
            result.get(timeout=1)
        assert deaths == deliveries - 1, "the last delivery is not run again"
        transport = made.app.transport
        assert wait_until(lambda: transport.size(made.queue) == 0, 10)
        assert transport.dead_letters(made.queue) == []
        made.send(1)
        assert_passes(made.settle(30), duplicates_allowed=False)
