"""The SQL result backend beyond the conformance suite: dropped connections, lazy deletion,
exact keys, schema creation races, limits. PostgreSQL and MariaDB are the shared servers;
connections are cut by killing this backend's own session, never anyone else's."""

from __future__ import annotations

import multiprocessing
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from conveyor.backends.base import STARTED, SUCCESS, ResultRecord
from conveyor.backends.sql import MAX_KEY, SQLBackend, tables
from conveyor.core.registry import create_backend
from conveyor.testing.waiting import wait_until


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    fixture = "postgres_url" if request.param == "postgresql" else "mysql_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def backend(sql_url: str) -> Iterator[SQLBackend]:
    made: SQLBackend = create_backend(sql_url, result_expires=60)
    yield made
    made.close()


_SESSION = {
    # (this session's id, kill a session and wait for it to end, is a session alive)
    "postgresql": (
        "SELECT pg_backend_pid()",
        "SELECT pg_terminate_backend({}, 5000)",
        "SELECT count(*) FROM pg_stat_activity WHERE pid = {}",
    ),
    "mysql": (
        "SELECT CONNECTION_ID()",
        "KILL {}",
        "SELECT count(*) FROM information_schema.processlist WHERE id = {}",
    ),
}


def cut_next_connection(backend: SQLBackend, admin: SQLBackend, kind: str) -> int:
    """Kill, from `admin`'s session, the pooled session the backend's next `kind` work takes.

    The pools are LIFO: the session used last is the next one out.
    """
    _, kill, alive = _SESSION[backend._dialect]
    victim = session_id(backend, kind)
    with admin._engines.atomic.connect() as connection:
        connection.execute(text(kill.format(victim)))

    def gone() -> bool:
        with admin._engines.atomic.connect() as connection:
            return connection.execute(text(alive.format(victim))).scalar_one() == 0

    assert wait_until(gone, 10)
    return victim


def session_id(backend: SQLBackend, kind: str) -> int:
    with getattr(backend._engines, kind).connect() as connection:
        return int(connection.execute(text(_SESSION[backend._dialect][0])).scalar_one())


@pytest.mark.parametrize("server_url", ["postgres_url", "mysql_url"])
def test_a_dropped_connection_is_retried(request: pytest.FixtureRequest, server_url: str) -> None:
    url = request.getfixturevalue(server_url)
    backend: SQLBackend = create_backend(url)
    admin: SQLBackend = create_backend(url)
    task_id, counter = uuid.uuid4().hex, uuid.uuid4().hex
    assert backend.store(ResultRecord(task_id, STARTED))
    for kind, operation in (
        ("single", lambda: backend.store(ResultRecord(task_id, SUCCESS, result=1))),
        ("read", lambda: backend.get(task_id)),
        ("read", lambda: backend.get_many([task_id])),
        ("atomic", lambda: backend.incr(counter)),
        ("atomic", lambda: backend.incr(counter)),
    ):
        victim = cut_next_connection(backend, admin, kind)
        operation()
        assert session_id(backend, kind) != victim
    assert backend.get(task_id) == ResultRecord(task_id, SUCCESS, result=1)
    # Each increment counted once although its first connection was dead.
    assert backend.incr(counter, 0) == 2
    backend.close()
    admin.close()


def test_expired_rows_are_deleted_lazily(sql_url: str) -> None:
    short: SQLBackend = create_backend(sql_url, result_expires=1)
    task_id = uuid.uuid4().hex
    short.store(ResultRecord(task_id, SUCCESS))
    assert wait_until(lambda: short.get(task_id) is None, 5)
    assert _rows(short, task_id) == 1  # filtered on read, still stored
    later: SQLBackend = create_backend(sql_url)  # a fresh backend sweeps on its first write
    later.store(ResultRecord(uuid.uuid4().hex, STARTED))
    assert _rows(short, task_id) == 0
    short.close()
    later.close()


def test_ids_are_compared_exactly(backend: SQLBackend) -> None:
    base = uuid.uuid4().hex
    ids = [f"Task-{base}", f"task-{base}", f"task-{base} ", f"täsk-{base}"]
    ids += [base + "z" * 400, base + "y" * 400]
    for task_id in ids:
        assert backend.store(ResultRecord(task_id, SUCCESS, result=task_id))
    got = backend.get_many(ids)
    assert {task_id: record.result for task_id, record in got.items() if record} == {
        task_id: task_id for task_id in ids
    }


def test_key_column_bounds(backend: SQLBackend) -> None:
    exact = "k" * (MAX_KEY - 32) + uuid.uuid4().hex  # exactly MAX_KEY characters, stored as is
    assert backend.store(ResultRecord(exact, STARTED))
    assert _rows(backend, exact) == 1


def test_mysql_limit_comes_from_the_server(mysql_url: str) -> None:
    backend: SQLBackend = create_backend(mysql_url)
    with backend._engines.read.connect() as connection:
        packet = int(connection.execute(text("SELECT @@max_allowed_packet")).scalar_one())
    assert backend.value_limit == (packet - 4096) // 2
    backend.close()


def _create_and_store(url: str, task_id: str) -> None:
    backend = create_backend(url)
    try:
        backend.store(ResultRecord(task_id, SUCCESS))
    finally:
        backend.close()


def test_processes_racing_to_create_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_create_and_store, args=(url, f"t{i}")) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    backend: SQLBackend = create_backend(url)
    assert all(record is not None for record in backend.get_many(["t0", "t1", "t2", "t3"]).values())
    backend.close()
    with sqlite3.connect(tmp_path / "race.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _rows(backend: SQLBackend, task_id: str) -> int:
    with backend._engines.read.connect() as connection:
        results = tables().results
        query = select(results.c.task_id).where(results.c.task_id == task_id)
        return len(connection.execute(query).all())
