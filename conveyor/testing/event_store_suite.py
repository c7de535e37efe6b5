"""The event-store contract suite (conveyor.backends.events.base): bind it to a store by
subclassing with an `event_store_url` fixture:

    class TestMyEventStore(EventStoreContract):
        @pytest.fixture(scope="class")
        @classmethod
        def event_store_url(cls) -> str:
            return "mystore://127.0.0.1:1234"

The clauses write only tasks, workers and text of their own, so they run on a shared
server; the size and age bounds are proven on the memory store (tests/monitoring), since
trimming a shared store would drop other users' history.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from conveyor.backends.events import EventStore, TaskQuery, open_store

clause = pytest.mark.clause


def _id() -> str:
    return str(uuid.uuid4())


def _event(kind: str, task_id: str, at: float, **fields: object) -> dict[str, object]:
    return {"type": kind, "uuid": task_id, "timestamp": at, "hostname": "w1@test", **fields}


class EventStoreContract:
    @pytest.fixture
    def store(self, event_store_url: str) -> Iterator[EventStore]:
        opened = open_store(event_store_url, expires=3600.0, max_tasks=100_000)
        yield opened
        opened.close()

    @clause("E1", "events fold into one searchable row per task, in any order")
    def test_fold_and_search_across_batches(self, store: EventStore) -> None:
        now = time.time()
        name = f"tests.add_{uuid.uuid4().hex[:8]}"
        one, two = _id(), _id()
        needle = uuid.uuid4().hex  # the servers keep earlier runs' tasks
        store.add(
            [
                _event(
                    "task-sent", one, now, name=name, args="(1, 2)", kwargs="{}", queue="default"
                ),
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
        assert row.hostname == "w1@test" and row.started_at == pytest.approx(now + 0.2, abs=1e-3)
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

    @clause("E1", "a task's last update never goes back for a late event of a later batch")
    def test_a_late_event_keeps_the_last_update(self, store: EventStore) -> None:
        now = time.time()
        name = f"tests.late_{uuid.uuid4().hex[:8]}"
        task_id = _id()
        store.add([_event("task-succeeded", task_id, now + 1, name=name, result="1")])
        store.add([_event("task-received", task_id, now, name=name)])
        row = store.task(task_id)
        assert row is not None
        assert row.state == "SUCCESS" and row.updated_at == pytest.approx(now + 1, abs=1e-3)
        assert store.tasks(TaskQuery(name=name, since=now + 0.5)) == [row]

    @clause("E1", "a batch of many tasks folds every one of them")
    def test_a_large_batch_folds_every_task(self, store: EventStore) -> None:
        now = time.time()
        name = f"tests.many_{uuid.uuid4().hex[:8]}"
        ids = [_id() for _ in range(300)]
        batch = [_event("task-sent", t, now + i / 1000, name=name) for i, t in enumerate(ids)]
        batch += [_event("task-succeeded", t, now + 1 + i / 1000) for i, t in enumerate(ids)]
        store.add(batch)
        rows = store.tasks(TaskQuery(name=name, state="SUCCESS", limit=1000))
        assert [r.task_id for r in rows] == ids[::-1]
        assert {len(store.timeline(t)) for t in ids[::50]} == {2}

    @clause("E2", "a cursor over the log, each worker's last event, per-minute counts")
    def test_cursor_workers_and_series(self, store: EventStore) -> None:
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
