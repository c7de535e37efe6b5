"""The Redis result backend beyond the conformance suite: push without polling, TTLs, restarts.

Tests that count commands or restart the server run on their own redis-server.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from conveyor.backends.base import PENDING, STARTED, SUCCESS, ResultRecord, ResultTimeout
from conveyor.backends.redis import CHANNEL_PREFIX, COUNTER_PREFIX, RESULT_PREFIX, RedisBackend
from conveyor.core.errors import BackendUnavailable, ConfigurationError
from conveyor.core.registry import create_backend
from conveyor.testing.servers import LocalServer, port_open, start_local_server
from conveyor.testing.waiting import wait_until


@pytest.fixture
def shared_backend(redis_url: str) -> Iterator[RedisBackend]:
    backend: RedisBackend = create_backend(redis_url, result_expires=30)
    yield backend
    backend.close()


def test_wait_is_pushed_not_polled(own_redis: LocalServer) -> None:
    backend: RedisBackend = create_backend(own_redis.url)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        backend.store(ResultRecord("t", PENDING))

        def processed() -> int:
            return int(admin.info("stats")["total_commands_processed"])

        before = processed()
        with pytest.raises(ResultTimeout):
            backend.wait("t", timeout=2.0)
        # SUBSCRIBE, GET, UNSUBSCRIBE and the INFO calls: a 10 ms poll would be ~200.
        assert processed() - before < 10
    finally:
        admin.close()
        backend.close()


def test_wait_on_a_ready_result_reads_without_subscribing(own_redis: LocalServer) -> None:
    backend: RedisBackend = create_backend(own_redis.url)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        backend.store(ResultRecord("t", SUCCESS, result=1))
        backend.get("t")  # the connection is open

        def connections() -> int:
            return int(admin.info("stats")["total_connections_received"])

        subscribes, opened = _calls(admin, "subscribe"), connections()
        for _ in range(20):
            assert backend.wait("t", timeout=1.0) == ResultRecord("t", SUCCESS, result=1)
        assert _calls(admin, "subscribe") == subscribes
        assert connections() == opened
    finally:
        admin.close()
        backend.close()


def test_waits_reuse_one_subscription_connection(own_redis: LocalServer) -> None:
    waiter: RedisBackend = create_backend(own_redis.url)
    writer: RedisBackend = create_backend(own_redis.url)
    admin = redis.Redis.from_url(own_redis.url)
    watcher = redis.Redis.from_url(own_redis.url)

    def connections() -> int:
        return int(admin.info("stats")["total_connections_received"])

    def subscribers(task_id: str) -> int:
        return int(watcher.pubsub_numsub(CHANNEL_PREFIX + task_id)[0][1])

    try:
        waiter.get("warm-up")
        writer.get("warm-up")
        subscribers("warm-up")
        before = connections()
        for number in range(10):
            task_id = f"t{number}"
            waiter.store(ResultRecord(task_id, PENDING))

            def finish(task_id: str = task_id) -> None:
                assert wait_until(lambda: subscribers(task_id) == 1, 5)
                writer.store(ResultRecord(task_id, SUCCESS, result=task_id))

            thread = threading.Thread(target=finish)
            thread.start()
            assert waiter.wait(task_id, timeout=5) == ResultRecord(task_id, SUCCESS, result=task_id)
            thread.join(5)
        assert connections() - before == 1, "one subscription connection for the ten waits"
        assert [subscribers(f"t{number}") for number in range(10)] == [0] * 10
    finally:
        watcher.close()
        admin.close()
        waiter.close()
        writer.close()


def test_store_during_overlaps_the_store_with_the_action(own_redis: LocalServer) -> None:
    backend: RedisBackend = create_backend(own_redis.url)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        backend.store(ResultRecord("warm-up", PENDING))
        seen: list[object] = []
        # The store is sent before the action runs, and read back after it.
        assert backend.store_during(ResultRecord("a", PENDING), lambda: seen.append(1)) is None
        assert seen == [1] and backend.get("a") == ResultRecord("a", PENDING)
        # A ready record is never replaced; the action still runs.
        backend.store(ResultRecord("done", SUCCESS, result=1))
        assert backend.store_during(ResultRecord("done", PENDING), lambda: "value") == "value"
        assert backend.get("done") == ResultRecord("done", SUCCESS, result=1)
        # The script missing from the server: stored all the same.
        admin.script_flush()
        assert backend.store_during(ResultRecord("b", PENDING), lambda: 2) == 2
        assert backend.get("b") == ResultRecord("b", PENDING)
        # The action's error is raised once the store has finished.
        with pytest.raises(KeyError):
            backend.store_during(ResultRecord("c", PENDING), _missing)
        assert admin.exists(RESULT_PREFIX + "c")
        assert backend.get("a") == ResultRecord("a", PENDING)  # the connection is usable
    finally:
        admin.close()
        backend.close()


def test_store_many_keeps_the_first_ready_state_in_one_script_call(
    own_redis: LocalServer,
) -> None:
    backend: RedisBackend = create_backend(own_redis.url)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        backend.store(ResultRecord("done", SUCCESS, result="first"))
        admin.script_flush()  # the script is loaded again on the first NOSCRIPT
        records = [
            ResultRecord("a", SUCCESS, result=1),
            ResultRecord("done", SUCCESS, result="second"),
            ResultRecord("b", STARTED),
        ]
        assert backend.store_many(records) == [True, False, True]
        assert backend.get("done") == ResultRecord("done", SUCCESS, result="first")
        assert backend.get_many(["a", "b"]) == {"a": records[0], "b": records[2]}

        def calls(command: str) -> int:
            return _calls(admin, command)

        more = [ResultRecord(f"m{i}", SUCCESS, result=i) for i in range(50)]
        evalsha, script = calls("evalsha"), calls("script|exists") + calls("script")
        assert backend.store_many(more) == [True] * 50
        assert calls("evalsha") - evalsha == 1  # one script call stores the whole batch
        assert calls("script|exists") + calls("script") == script  # no per-batch check
        assert backend.store_many([]) == []
    finally:
        admin.close()
        backend.close()


def test_wait_carries_on_across_a_server_restart(own_redis: LocalServer) -> None:
    waiter: RedisBackend = create_backend(own_redis.url)
    writer: RedisBackend = create_backend(own_redis.url)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(_wait(waiter, "t", 30)))
    try:
        waiter.store(ResultRecord("t", STARTED))
        thread.start()
        assert wait_until(lambda: _subscribers(own_redis, "t") == 1, 5)
        own_redis.stop()
        restarted = start_local_server("redis", port=own_redis.port)
        try:
            assert wait_until(lambda: port_open("127.0.0.1", own_redis.port), 10)
            # The restarted server is empty; the waiter subscribes again, then the task ends.
            assert wait_until(lambda: _subscribers(restarted, "t") == 1, 10)
            assert writer.store(ResultRecord("t", SUCCESS, result="after restart"))
            thread.join(15)
            assert outcome == [ResultRecord("t", SUCCESS, result="after restart")]
        finally:
            restarted.stop()
    finally:
        thread.join(1)
        waiter.close()
        writer.close()


def test_a_dead_server_ends_wait_with_backend_unavailable(own_redis: LocalServer) -> None:
    backend: RedisBackend = create_backend(own_redis.url, timeout=1.0, connect_timeout=1.0)
    own_redis.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        backend.wait("t", timeout=None)
    assert time.monotonic() - started < 5


def test_records_and_counters_carry_the_expiry(
    shared_backend: RedisBackend, redis_url: str
) -> None:
    task_id, counter = uuid.uuid4().hex, uuid.uuid4().hex
    shared_backend.store(ResultRecord(task_id, SUCCESS))
    shared_backend.incr(counter)
    admin = redis.Redis.from_url(redis_url)
    keep: RedisBackend = create_backend(redis_url, result_expires=0)
    try:
        assert 29_000 < admin.pttl(RESULT_PREFIX + task_id) <= 30_000
        assert 29_000 < admin.pttl(COUNTER_PREFIX + counter) <= 30_000
        kept = uuid.uuid4().hex
        keep.store(ResultRecord(kept, STARTED))
        assert admin.pttl(RESULT_PREFIX + kept) == -1  # no expiry
    finally:
        admin.delete(RESULT_PREFIX + task_id, COUNTER_PREFIX + counter, RESULT_PREFIX + kept)
        admin.close()
        keep.close()


def test_long_and_unprintable_ids(shared_backend: RedisBackend) -> None:
    ids = ["x" * 5000 + uuid.uuid4().hex, f"line\nbreak {uuid.uuid4()}", f"\ud800{uuid.uuid4()}"]
    for task_id in ids[:2]:
        assert shared_backend.store(ResultRecord(task_id, SUCCESS, result=len(task_id)))
        assert shared_backend.wait(task_id, timeout=5).result == len(task_id)
        shared_backend.forget(task_id)
    assert shared_backend.get(ids[2]) is None  # a lone surrogate: hashed, not a client error


def test_several_hosts_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="one host"):
        create_backend("redis://127.0.0.1:6379;127.0.0.1:6380/0")


def _wait(backend: RedisBackend, task_id: str, timeout: float) -> object:
    try:
        return backend.wait(task_id, timeout=timeout)
    except Exception as exc:
        return exc


def _calls(admin: redis.Redis, command: str) -> int:
    """How many times the server ran `command` (its commandstats)."""
    stats = admin.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0))


def _missing() -> None:
    raise KeyError("missing")


def _subscribers(server: LocalServer, task_id: str) -> int:
    client = redis.Redis(port=server.port)
    try:
        counts = client.pubsub_numsub(CHANNEL_PREFIX + task_id)
        return int(counts[0][1]) if counts else 0
    except redis.ConnectionError:
        return -1
    finally:
        client.close()
