"""Events from clients and workers: names, fields, history, broadcast, the off switches."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.app.events import EVENT_CHANNEL, FLUSH_SLICE
from conveyor.backends.events import TaskQuery
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker


@pytest.fixture
def app() -> Iterator[Conveyor]:
    name = uuid.uuid4().hex
    application = Conveyor("tests", broker=f"memory://{name}", backend=f"memory://{name}")
    yield application
    application.close()


@pytest.fixture
def start_worker(app: Conveyor) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(app, concurrency=2, shutdown_timeout=5.0, hostname="w1@test")
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _types(app: Conveyor, task_id: str) -> list[str]:
    app.events.flush()
    return [e["type"] for e in app.events.store.timeline(task_id)]


def test_a_task_s_events_reach_the_history_and_the_broadcast(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def fail() -> None:
        raise ValueError("broken on purpose")

    live = app.transport.subscribe(EVENT_CHANNEL)
    start_worker()
    ok = add.delay(2, y=3)
    bad = fail.delay()
    assert ok.get(timeout=5) == 5
    bad.get(timeout=5, propagate=False)
    done = ["task-sent", "task-received", "task-started", "task-succeeded"]
    assert wait_until(lambda: _types(app, ok.id) == done, 5), _types(app, ok.id)
    assert wait_until(lambda: _types(app, bad.id)[-1:] == ["task-failed"], 5)
    store = app.events.store
    row = store.task(ok.id)
    assert row is not None
    assert (row.name, row.state, row.args, row.kwargs, row.result) == (
        add.name,
        "SUCCESS",
        "[2]",
        "{'y': 3}",
        "5",
    )
    assert row.hostname == "w1@test" and row.runtime is not None and row.runtime >= 0
    failed = store.task(bad.id)
    assert failed is not None and failed.state == "FAILURE"
    assert failed.exception == "ValueError('broken on purpose')"
    assert "broken on purpose" in (failed.traceback or "")
    assert [r.task_id for r in store.tasks(TaskQuery(state="FAILURE"))] == [bad.id]
    assert "w1@test" in store.workers()
    assert store.workers()["w1@test"]["type"] == "worker-online"
    heard: list[dict[str, object]] = []
    while (message := live.get(0.5)) is not None:
        heard.extend(json.loads(message.body))
    live.close()
    assert {"task-sent", "task-succeeded", "task-failed", "worker-online"} <= {
        str(e["type"]) for e in heard
    }


def test_revoked_tasks_send_task_revoked(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.apply_async((1, 1), countdown=0.3)
    app.control.revoke(result.id)
    start_worker()
    assert wait_until(lambda: _types(app, result.id)[-1:] == ["task-revoked"], 5), _types(
        app, result.id
    )


def test_worker_send_task_events_false_keeps_task_sent_only(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    app.conf.worker_send_task_events = False

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    start_worker()
    result = add.delay(1, 2)
    assert result.get(timeout=5) == 3
    assert _types(app, result.id) == ["task-sent"]
    app.conf.task_send_sent_event = False
    quiet = add.delay(1, 2)
    assert quiet.get(timeout=5) == 3
    assert _types(app, quiet.id) == []


def test_an_unreachable_store_never_fails_a_task(
    app: Conveyor, start_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    app.conf.events_store_url = "redis://127.0.0.1:1/0"

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    start_worker()
    with caplog.at_level(logging.WARNING, logger="conveyor.events"):
        assert add.delay(1, 2).get(timeout=5) == 3
        app.events.flush()
    assert "storing events failed, events dropped" in caplog.text
    assert "127.0.0.1:1" in caplog.text


def test_a_retry_sends_task_retried_with_its_exception(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    attempts: list[int] = []

    @app.task(bind=True, name="events.flaky")
    def flaky(self: Any) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise self.retry(exc=KeyError("first time"), countdown=0.1)
        return "second time"

    start_worker()
    result = flaky.delay()
    assert result.get(timeout=10) == "second time"
    wanted = "task-succeeded"
    assert wait_until(lambda: _types(app, result.id)[-1:] == [wanted], 5), _types(app, result.id)
    types = _types(app, result.id)
    assert types.count("task-received") == 2 and "task-retried" in types
    retried = next(e for e in app.events.store.timeline(result.id) if e["type"] == "task-retried")
    assert retried["exception"] == "KeyError('first time')"
    row = app.events.store.task(result.id)
    assert row is not None and (row.state, row.retries) == ("SUCCESS", 1)


def test_a_forked_child_sends_its_own_events(app: Conveyor, tmp_path: Path) -> None:
    app.conf.events_store_url = f"sqlite:///{tmp_path / 'events.db'}"  # seen by both
    app.events.send("task-sent", uuid="parent-one", name="t")
    app.events.flush()
    pid = os.fork()
    if pid == 0:  # the child: a fresh buffer and flush thread, its own store connections
        try:
            app.events.send("task-sent", uuid="child-one", name="t")
            ok = wait_until(lambda: bool(app.events.store.timeline("child-one")), 5)
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    (event,) = app.events.store.timeline("child-one")
    assert event["pid"] == pid and event["hostname"].startswith(f"gen{pid}@")


def test_without_broadcast_the_stream_polls_the_history(app: Conveyor) -> None:
    from conveyor.monitoring.stream import EventStream

    stream = EventStream(app, broadcast=False)  # as on a transport without broadcast
    assert stream.get(0.1) == []  # opens at the history's end: old events are not replayed
    app.events.send("task-sent", uuid="polled-one", name="t")
    app.events.flush()
    seen: list[dict[str, object]] = []
    assert wait_until(lambda: bool(seen.extend(stream.get(0.2)) or seen), 5)
    assert [e["uuid"] for e in seen] == ["polled-one"]
    stream.close()


def test_saferepr_shortens_and_never_raises() -> None:
    from conveyor.app.events import REPR_LIMIT, saferepr

    class Loud(int):
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert saferepr([1, "a"]) == "[1, 'a']" and saferepr({"k": None}) == "{'k': None}"
    assert len(saferepr("x" * 10_000)) <= REPR_LIMIT
    assert saferepr(list(range(1000))).endswith("...]")
    assert saferepr([Loud(1)]) == "<unrepresentable list: RuntimeError>"


def test_a_large_batch_goes_in_slices_and_loses_nothing(app: Conveyor) -> None:
    """A flush of more than FLUSH_SLICE events stores, broadcasts and hands the listeners
    every event, FLUSH_SLICE at a time (the flush thread pauses between slices)."""
    sizes: list[int] = []
    app.events.listeners.append(lambda batch: sizes.append(len(batch)))
    subscription = app.transport.subscribe(EVENT_CHANNEL)
    ids = [str(uuid.uuid4()) for _ in range(FLUSH_SLICE + 100)]
    for task_id in ids:
        app.events.send("task-sent", uuid=task_id, name="t")
        app.events.send("task-succeeded", uuid=task_id, result="1")
    assert app.events.flush() == 2 * len(ids)
    assert sizes == [FLUSH_SLICE, FLUSH_SLICE, 2 * len(ids) - 2 * FLUSH_SLICE]
    rows = app.events.store.tasks(TaskQuery(state="SUCCESS", limit=1000))
    assert sorted(r.task_id for r in rows) == sorted(ids)
    heard: list[int] = []
    while (message := subscription.get(0.5)) is not None:
        heard.append(len(json.loads(message.body)))
    subscription.close()
    assert heard == sizes
