"""The event-store contract suite (conveyor.testing.event_store_suite) on every store, and
the bounds and the fold on the memory store."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from conveyor.backends.events import TaskQuery, open_store
from conveyor.backends.events.base import fold, merge
from conveyor.core.errors import ConfigurationError
from conveyor.testing.event_store_suite import EventStoreContract, _event, _id


class TestMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def event_store_url(self) -> str:
        return f"memory://{uuid.uuid4().hex}"


class TestSQLiteEventStore(EventStoreContract):
    @pytest.fixture
    def event_store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'events.db'}"


class TestRedisEventStore(EventStoreContract):
    @pytest.fixture
    def event_store_url(self, redis_url: str) -> str:
        return redis_url


class TestPostgreSQLEventStore(EventStoreContract):
    @pytest.fixture
    def event_store_url(self, postgres_url: str) -> str:
        return postgres_url


class TestMariaDBEventStore(EventStoreContract):
    @pytest.fixture
    def event_store_url(self, mysql_url: str) -> str:
        return mysql_url


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
