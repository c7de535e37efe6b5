"""The Memcached result backend beyond the conformance suite: several hosts, a host down, a
server item limit lower than declared, keys memcached would refuse. Runs its own servers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from pymemcache.client.base import Client

from conveyor.backends.base import STARTED, SUCCESS, ResultRecord
from conveyor.backends.errors import ResultTooLarge
from conveyor.backends.memcached import RESULT_PREFIX, MemcachedBackend, memcached_key
from conveyor.core.errors import BackendUnavailable, ConfigurationError
from conveyor.core.registry import create_backend
from conveyor.testing.plugin import missing
from conveyor.testing.servers import free_port, port_open
from conveyor.testing.waiting import wait_until

MEMCACHED = "/usr/bin/memcached"
StartServer = Callable[..., int]


@pytest.fixture
def start_memcached() -> Iterator[StartServer]:
    """Start memcached servers on free ports (extra arguments allowed); stop them by PID."""
    if not os.path.exists(MEMCACHED):
        missing(f"{MEMCACHED} is not installed")
    processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(*extra: str) -> int:
        port = free_port()
        command = [MEMCACHED, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root"]
        process = subprocess.Popen([*command, *extra], start_new_session=True)
        processes[port] = process
        assert wait_until(lambda: port_open("127.0.0.1", port), 10), "memcached did not start"
        return port

    start.processes = processes  # type: ignore[attr-defined]
    yield start
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)


def stop(start: StartServer, port: int) -> None:
    process = start.processes[port]  # type: ignore[attr-defined]
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(10)


def test_records_spread_over_several_hosts(start_memcached: StartServer) -> None:
    ports = [start_memcached(), start_memcached()]
    url = "memcached://" + ";".join(f"127.0.0.1:{port}" for port in ports)
    backend: MemcachedBackend = create_backend(url)
    ids = [f"task-{i}" for i in range(40)]
    for i, task_id in enumerate(ids):
        assert backend.store(ResultRecord(task_id, SUCCESS, result=i))
    per_host = []
    for port in ports:
        direct = Client(("127.0.0.1", port))
        keys = [memcached_key(RESULT_PREFIX, task_id) for task_id in ids]
        per_host.append(len(direct.get_many(keys)))
        direct.close()
    assert sum(per_host) == 40 and min(per_host) > 0, per_host
    got = backend.get_many([*ids, "unknown"])
    assert [got[task_id].result for task_id in ids] == list(range(40))  # type: ignore[union-attr]
    assert got["unknown"] is None
    assert [backend.incr(f"counter-{i}", 2) for i in range(10)] == [2] * 10
    backend.close()


def test_a_host_down_is_an_error_never_an_unknown_id(start_memcached: StartServer) -> None:
    ports = [start_memcached(), start_memcached()]
    url = "memcached://" + ";".join(f"127.0.0.1:{port}" for port in ports)
    backend: MemcachedBackend = create_backend(url, connect_timeout=1.0, timeout=1.0)
    ids = [f"task-{i}" for i in range(20)]
    for task_id in ids:
        backend.store(ResultRecord(task_id, SUCCESS))
    stop(start_memcached, ports[1])
    found, unavailable = 0, 0
    for task_id in ids:
        try:
            assert backend.get(task_id) == ResultRecord(task_id, SUCCESS)
            found += 1
        except BackendUnavailable:
            unavailable += 1
    assert found > 0 and unavailable > 0 and found + unavailable == 20
    with pytest.raises(BackendUnavailable):
        backend.get_many(ids)
    backend.close()


def test_a_server_item_limit_below_the_declared_one(start_memcached: StartServer) -> None:
    port = start_memcached("-I", "64k", "-o", "slab_chunk_max=16384")
    backend: MemcachedBackend = create_backend(f"memcached://127.0.0.1:{port}")
    big = "x" * 100_000  # under the declared 1 MiB, over this server's 64 KiB
    assert backend.store(ResultRecord("done", SUCCESS, result=big))
    stored = backend.get("done")
    assert stored is not None and stored.state == "FAILURE"
    assert stored.result["exc_type"] == "ResultTooLarge"
    assert "item size limit" in stored.result["exc_message"]
    with pytest.raises(ResultTooLarge):
        backend.store(ResultRecord("running", "PROGRESS", meta={"blob": big}))
    assert backend.get("running") is None
    backend.close()


def test_ids_memcached_would_refuse_are_hashed(start_memcached: StartServer) -> None:
    backend: MemcachedBackend = create_backend(f"memcached://127.0.0.1:{start_memcached()}")
    ids = ["with space", "naïve ✓", "x" * 300, "y" * 300, "tab\tand\nnewline"]
    for task_id in ids:
        assert backend.store(ResultRecord(task_id, STARTED, meta={"id": task_id}))
    for task_id in ids:
        record = backend.get(task_id)
        assert record is not None and record.meta == {"id": task_id}
    backend.close()


def test_counters_go_down_and_stop_at_zero(start_memcached: StartServer) -> None:
    backend: MemcachedBackend = create_backend(f"memcached://127.0.0.1:{start_memcached()}")
    assert backend.incr("c", 5) == 5
    assert backend.incr("c", -2) == 3
    assert backend.incr("c", -10) == 0
    assert backend.incr("new", -1) == 0
    backend.close()


def test_long_expiries_become_unix_times() -> None:
    month = create_backend("memcached://127.0.0.1:1", result_expires=40 * 24 * 3600)
    assert abs(month._expire() - (time.time() + 40 * 24 * 3600)) < 5
    assert create_backend("memcached://127.0.0.1:1", result_expires=1.2)._expire() == 2
    assert create_backend("memcached://127.0.0.1:1", result_expires=0)._expire() == 0


def test_credentials_are_refused_before_any_io() -> None:
    with pytest.raises(ConfigurationError, match="no authentication") as info:
        create_backend("memcached://user:secret@127.0.0.1:11211")
    assert "secret" not in str(info.value)
