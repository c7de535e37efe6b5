"""The event store contract (backends/events/base.py) on every store."""

from __future__ import annotations

import time
import uuid

import pytest

from conveyor.backends.events import EventStore, TaskQuery, open_store
from conveyor.backends.events.base import fold, merge
from conveyor.core.errors import ConfigurationError


def _id() -> str:
    return str(uuid.uuid4())


def _event(kind: str, task_id: str, at: float, **fields: object) -> dict[str, object]:
    return {"type": kind, "uuid": task_id, "timestamp": at, "hostname": "w1@test", **fields}


def test_fold_and_search_across_batches(store: EventStore) -> None:
    now = time.time()
    name = f"tests.add_{uuid.uuid4().hex[:8]}"
    one, two = _id(), _id()
    needle = uuid.uuid4().hex  # the servers keep earlier runs' tasks
    store.add(
        [
            _event("task-sent", one, now, name=name, args="(1, 2)", kwargs="{}", queue="default"),
            _event("task-sent", two, now, name=name, args=f"('{needle}',)", kwargs="{}"),
            _event("task-received", one, now + 0.1, name=name, args="(1, 2)", retries=0),
        ]
    )
    # The success arrives before a late task-started: the state stays SUCCESS.
    store.add([_event("task-succeeded", one, now + 0.3, result="3", runtime=0.2)])
    store.add([_event("task-started", one, now + 0.2)])
    row = store.task(one)
    assert row is not None
    assert (row.state, row.name, row.args, row.result) == ("SUCCESS", name, "(1, 2)", "3")
    assert row.runtime == pytest.approx(0.2)
    assert row.hostname == "w1@test" and row.started_at == pytest.approx(now + 0.2)
    assert [e["type"] for e in store.timeline(one)] == [
        "task-sent",
        "task-received",
        "task-succeeded",
        "task-started",
    ]
    assert [r.task_id for r in store.tasks(TaskQuery(name=name))] == [one, two]
    assert [r.task_id for r in store.tasks(TaskQuery(name=name, state="PENDING"))] == [two]
    assert [r.task_id for r in store.tasks(TaskQuery(text=needle))] == [two]
    assert [r.task_id for r in store.tasks(TaskQuery(task_id=two[:13]))] == [two]
    assert [r.task_id for r in store.tasks(TaskQuery(name=name, limit=1, offset=1))] == [two]
    assert store.tasks(TaskQuery(name=name, until=now - 10)) == []
    assert store.task(_id()) is None


def test_cursor_workers_and_series(store: EventStore) -> None:
    _, cursor = store.since(None)
    now = time.time()
    host = f"w-{uuid.uuid4().hex[:8]}"
    task_id = _id()
    store.add(
        [
            {"type": "worker-online", "hostname": host, "timestamp": now, "freq": 2.0},
            _event("task-received", task_id, now, name="t"),
            _event("task-failed", task_id, now, exception="ValueError('x')", traceback="tb"),
            {"type": "worker-heartbeat", "hostname": host, "timestamp": now + 1, "active": 3},
        ]
    )
    seen: list[dict[str, object]] = []
    for _ in range(5):  # other tests' events may come in between on a shared server
        events, cursor = store.since(cursor)
        seen.extend(events)
        if not events:
            break
    mine = [e for e in seen if e.get("hostname") == host or e.get("uuid") == task_id]
    assert [e["type"] for e in mine] == [
        "worker-online",
        "task-received",
        "task-failed",
        "worker-heartbeat",
    ]
    assert store.since(cursor) == ([], cursor) or all(
        e.get("hostname") != host for e in store.since(cursor)[0]
    )
    assert store.workers()[host]["active"] == 3
    counts = store.series(now - 60)
    bucket = int(now // 60) * 60
    assert counts[bucket]["task-failed"] >= 1
    row = store.task(task_id)
    assert row is not None and (row.state, row.exception) == ("FAILURE", "ValueError('x')")


def test_bounded_by_size(tmp_path: object) -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}", expires=3600.0, max_tasks=3)
    ids = [_id() for _ in range(5)]
    now = time.time()
    store.add([_event("task-sent", t, now + i, name="t") for i, t in enumerate(ids)])
    assert [r.task_id for r in store.tasks(TaskQuery())] == ids[:1:-1]
    assert store.task(ids[0]) is None


def test_expired_events_are_dropped() -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}", expires=60.0, max_tasks=10)
    old, new = _id(), _id()
    store.add([_event("task-sent", old, time.time() - 120, name="t")])
    store.add([_event("task-sent", new, time.time(), name="t")])
    assert [r.task_id for r in store.tasks(TaskQuery())] == [new]


def test_bad_queries_and_settings_name_the_part() -> None:
    with pytest.raises(ConfigurationError, match="unknown task state 'DONE'"):
        TaskQuery(state="DONE")
    with pytest.raises(ConfigurationError, match="limit"):
        TaskQuery(limit=0)
    with pytest.raises(ConfigurationError, match="events_expires"):
        open_store("memory://x", expires=0)
    with pytest.raises(ConfigurationError, match="no event store for memcached"):
        open_store("memcached://127.0.0.1:11211")


def test_merge_keeps_a_ready_state_against_a_later_non_ready_event() -> None:
    done = fold(_event("task-succeeded", "a", 100.0))
    late = fold(_event("task-received", "a", 200.0, name="t"))
    assert done is not None and late is not None
    merged = merge(done, late)
    assert (merged["state"], merged["name"], merged["updated_at"]) == ("SUCCESS", "t", 200.0)
