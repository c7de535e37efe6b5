"""`--autoscale MAX,MIN` on a real worker and a real Redis: the pool grows while every slot
is busy and work waits, never past MAX, shrinks to MIN once idle for the keepalive, and
`pool_grow`/`pool_shrink` move the bounds as Celery's do. Each step is read from `inspect
stats`, as an operator would, and waited on with a deadline."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from click.testing import CliRunner

from conveyor.cli import main
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker
from tests.worker.autoscale_tasks import app, hold, open_gate

APP_PATH = "tests.worker.autoscale_tasks"


@dataclass
class Workers:
    """Workers on a queue of the test's own (the Redis server is shared)."""

    queue: str = field(default_factory=lambda: f"autoscale-{uuid.uuid4().hex[:12]}")
    started: list[Worker] = field(default_factory=list)

    def start(self, **options: Any) -> Worker:
        worker = Worker(
            app,
            queues=[self.queue],
            hostname=f"autoscale-{uuid.uuid4().hex[:8]}@test",
            app_path=APP_PATH,
            shutdown_timeout=10.0,
            **options,
        )
        worker.start()
        self.started.append(worker)
        return worker

    def send_holds(self, count: int) -> tuple[str, list[Any]]:
        """`count` tasks that run until their gate opens: the gate and their results."""
        gate = f"gate-{uuid.uuid4().hex}"
        return gate, [hold.apply_async((gate,), queue=self.queue) for _ in range(count)]


@pytest.fixture
def workers(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    monkeypatch.setenv("CONVEYOR_BROKER_URL", redis_url)
    monkeypatch.setenv("CONVEYOR_RESULT_BACKEND", redis_url)
    app.conf.update(broker_url=redis_url, result_backend=redis_url)
    app.conf.worker_autoscale_keepalive = 0.5
    made = Workers()
    yield made
    for worker in made.started:
        worker.stop()
    app.transport.delete(made.queue)
    app.close()


def pool_stats(worker: Worker) -> dict[str, Any]:
    """The worker's `pool` entry of `inspect stats` ({} when it did not answer)."""
    replies = app.control.inspect(timeout=2.0, destination=[worker.hostname]).stats() or {}
    return replies.get(worker.hostname, {}).get("pool", {})


def autoscaler(worker: Worker) -> dict[str, Any]:
    return pool_stats(worker).get("autoscaler", {})


def reached(worker: Worker, timeout: float, **wanted: int) -> dict[str, Any]:
    """Wait until the autoscaler's stats hold `wanted`; the last stats seen."""
    seen: dict[str, Any] = {}

    def holds() -> bool:
        seen.update(autoscaler(worker))
        return all(seen.get(key) == value for key, value in wanted.items())

    assert wait_until(holds, timeout, interval=0.1), f"wanted {wanted}, stats say {seen}"
    return seen


@pytest.mark.parametrize(("pool", "timeout"), [("threads", 15.0), ("processes", 90.0)])
def test_the_pool_grows_under_load_to_max_and_shrinks_to_min_when_idle(
    workers: Workers, pool: str, timeout: float
) -> None:
    worker = workers.start(pool=pool, autoscale=(3, 1))
    assert reached(worker, timeout, current=1, min=1, max=3)
    gate, results = workers.send_holds(5)
    # Five waiting for slots: the pool grows to three, and stays there with demand above it.
    stats = reached(worker, timeout, current=3, qty=5)
    assert stats["max"] == 3
    assert wait_until(lambda: worker.pool.busy() == 3, timeout), "three run at once"
    open_gate(gate)
    assert [r.get(timeout=timeout) for r in results] == [gate] * 5
    reached(worker, timeout, current=1, qty=0)
    if pool == "processes":  # a retired slot's child is stopped, not left running
        assert wait_until(lambda: len(pool_children()) == 1, timeout), pool_children()


def pool_children() -> list[Any]:
    """The live process-pool children of this process."""
    return [child for child in multiprocessing.active_children() if child.name == "conveyor-child"]


def test_pool_grow_and_shrink_move_the_bounds_as_celery(workers: Workers) -> None:
    worker = workers.start(pool="threads", autoscale=(3, 2))
    reached(worker, 15.0, current=2)
    (grown,) = app.control.pool_grow(3, destination=[worker.hostname], reply=True)
    assert grown == {worker.hostname: {"ok": "pool now has 5 slots"}}
    # Past MAX: MAX follows, as Celery's force_scale_up; idle, it shrinks back to MIN.
    reached(worker, 15.0, max=5, current=2)
    (shrunk,) = app.control.pool_shrink(1, destination=[worker.hostname], reply=True)
    assert shrunk == {worker.hostname: {"ok": "pool now has 1 slots"}}
    stats = reached(worker, 15.0, min=1, current=1)
    assert pool_stats(worker)["max-concurrency"] == 1 and stats["max"] == 5
    gate, results = workers.send_holds(2)
    reached(worker, 15.0, current=2, qty=2)  # grows again from the lowered MIN
    open_gate(gate)
    assert [r.get(timeout=15.0) for r in results] == [gate] * 2


def test_autoscale_needs_a_pool_that_can_resize() -> None:
    from conveyor.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="autoscale needs the threads or processes"):
        Worker(app, pool="solo", autoscale=(2, 1))


def test_the_autoscale_command_sets_both_bounds_and_moves_the_pool(workers: Workers) -> None:
    app.conf.worker_autoscale_keepalive = 600.0  # no shrinking by idleness in this test
    worker = workers.start(pool="threads", autoscale=(3, 1))
    to = {"destination": [worker.hostname], "reply": True}
    assert app.control.autoscale(5, 2, **to) == [
        {worker.hostname: {"ok": "autoscale now max=5 min=2"}}
    ]
    reached(worker, 15.0, max=5, min=2, current=2)  # grown to the new MIN at once
    runner = CliRunner()
    out = runner.invoke(
        main, ["-A", APP_PATH, "control", "autoscale", "1", "1", "-d", worker.hostname]
    )
    assert out.exit_code == 0, out.output
    assert "autoscale now max=1 min=1" in out.output
    reached(worker, 15.0, max=1, min=1, current=1)  # shrunk to the new MAX at once
    (refused,) = app.control.autoscale(1, 2, **to)
    assert "need 0 <= min <= max" in refused[worker.hostname]["error"]


def test_the_autoscale_command_is_refused_by_a_fixed_pool(workers: Workers) -> None:
    worker = workers.start(pool="threads", concurrency=2)
    (refused,) = app.control.autoscale(4, 1, destination=[worker.hostname], reply=True)
    assert refused == {
        worker.hostname: {"error": "autoscale is not enabled: start the worker with --autoscale"}
    }
    assert pool_stats(worker)["max-concurrency"] == 2
