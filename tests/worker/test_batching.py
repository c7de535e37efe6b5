"""Batched worker round trips: one state read per fetched batch, successes stored and
acked in batches, never behind a slow task, and always stored before the ack."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from conveyor import Conveyor, states
from conveyor.backends.base import ResultRecord
from conveyor.core.message import Delivery
from conveyor.testing.waiting import wait_until
from conveyor.worker import results
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


def _spy(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str, before: Any = None) -> list[Any]:
    """Record each call's first argument (after running `before` on it), then call through."""
    calls: list[Any] = []
    original = getattr(obj, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        if before is not None:
            before(*args)
        calls.append(args[0] if args else None)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, spy)
    return calls


def test_a_backlog_is_stored_and_acked_in_batches_results_first(
    app: Conveyor, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    sent = [add.delay(i, i) for i in range(200)]
    unstored: list[str] = []
    checking = threading.local()

    def check_stored(deliveries: Sequence[Delivery]) -> None:
        checking.on = True
        for delivery in deliveries:
            record = app.backend.get(delivery.message.correlation_id or "")
            if record is None or record.state != states.SUCCESS:
                unstored.append(delivery.message.id)
        checking.on = False

    stores = _spy(monkeypatch, app.backend, "store_many")
    acks = _spy(monkeypatch, app.transport, "ack_many", check_stored)
    slot_reads: list[str] = []

    def from_a_slot(*_args: Any) -> None:
        slot = threading.current_thread().name.startswith("conveyor-slot")
        if slot and not getattr(checking, "on", False):
            slot_reads.append(threading.current_thread().name)

    _spy(monkeypatch, app.backend, "get", from_a_slot)
    worker = start_worker(concurrency=1)
    assert [result.get(timeout=10) for result in sent] == [2 * i for i in range(200)]
    assert sum(len(batch) for batch in stores) == 200
    assert len(stores) < 100, "successes were stored one by one"
    assert sum(len(batch) for batch in acks) == 200 and len(acks) == len(stores)
    assert unstored == [], "a message was acked before its result was stored"
    # The revoked/duplicate check read each fetched batch at once, not each task.
    assert len(slot_reads) < 20
    assert worker.consumer.held == 0


def test_a_slow_task_does_not_hold_back_finished_results(
    app: Conveyor, start_worker: StartWorker
) -> None:
    release = threading.Event()

    @app.task
    def fast() -> str:
        return "done"

    @app.task
    def slow() -> None:
        release.wait(10)

    warm = fast.delay()
    start_worker(concurrency=1)
    assert warm.get(timeout=5) == "done"  # fast is now known to be quick
    quick, waiting = fast.delay(), slow.delay()
    try:
        assert quick.get(timeout=5) == "done"
        assert waiting.state == states.PENDING or waiting.state == states.STARTED
    finally:
        release.set()
    waiting.get(timeout=5)


def test_a_failed_batch_store_returns_the_messages(
    app: Conveyor, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    failing = [False]

    @app.task
    def count() -> int:
        runs.append(1)
        return len(runs)

    original = app.backend.store_many

    def store_many(records: Sequence[ResultRecord]) -> list[bool]:
        if failing[0]:
            failing[0] = False
            raise ConnectionError("the store went away")
        return original(records)

    monkeypatch.setattr(app.backend, "store_many", store_many)
    result = count.delay()
    # Only the worker's batch fails: the memory backend stores delay()'s PENDING record
    # through store_many too.
    failing[0] = True
    start_worker(concurrency=1)
    # The message came back and the task ran again; its second result is stored.
    assert result.get(timeout=10) == 2


def test_a_fresh_batch_check_is_used_and_a_stale_one_read_again(app: Conveyor) -> None:
    app.backend.store(ResultRecord("t", states.REVOKED))
    fresh = results.Checked(None, time.monotonic())
    stale = results.Checked(None, time.monotonic() - results.CHECK_FRESH_FOR - 0.01)
    assert results.claim(app, "t", False, {}, fresh) is None  # read before the revoke
    assert results.claim(app, "t", False, {}, stale) == states.REVOKED
    assert results.claim(app, "t", False, {}, None) == states.REVOKED
    checked = results.check_many(app, ["t", "unknown"])
    assert {k: v.state for k, v in checked.items()} == {"t": states.REVOKED, "unknown": None}


def test_quick_tasks_widen_the_prefetch_window_and_a_slow_one_narrows_it(
    app: Conveyor, start_worker: StartWorker
) -> None:
    """The window is concurrency x multiplier until recent tasks ran under QUICK seconds;
    then concurrency x worker_quick_prefetch; back again once slow runs are common."""

    @app.task
    def quick(x: int) -> int:
        return x

    @app.task
    def slow() -> None:
        time.sleep(0.05)

    worker = start_worker(concurrency=2, prefetch_multiplier=2)
    assert (worker.prefetch, worker.quick_prefetch) == (4, 64)
    assert [r.get(timeout=10) for r in [quick.delay(i) for i in range(50)]] == list(range(50))

    def widened() -> bool:  # each fetch sizes the next window; a loaded machine may need more
        quick.delay(0).get(timeout=10)
        return worker.consumer.prefetch == 64

    assert wait_until(widened, timeout=10)
    for _ in range(3):
        slow.delay().get(timeout=10)
    quick.delay(1).get(timeout=10)
    assert worker.consumer.prefetch == 4


def test_the_quick_window_can_be_turned_off(app: Conveyor, start_worker: StartWorker) -> None:
    app.conf.worker_quick_prefetch = 0

    @app.task
    def quick(x: int) -> int:
        return x

    worker = start_worker(concurrency=2, prefetch_multiplier=2)
    assert [r.get(timeout=10) for r in [quick.delay(i) for i in range(20)]] == list(range(20))
    assert worker.quick_prefetch == worker.consumer.prefetch == 4
