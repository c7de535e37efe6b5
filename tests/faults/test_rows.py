"""The fault rows: each sends tasks through its own server, applies one fault, heals, drains
and checks the ledger (conveyor.testing.ledger): lost 0, unexpected 0, duplicates at most
the runs in flight at the fault, and 0 where nothing died."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from conveyor.exceptions import WorkerLostError
from conveyor.testing.fault_servers import (
    OwnServer,
    memcached_with_limit,
    postgres_cluster,
    rabbitmqctl,
    redis_with_aof,
)
from conveyor.testing.proxy import TCPProxy
from conveyor.testing.waiting import wait_until
from tests.faults.conftest import full_tier, tier
from tests.faults.harness import KILL_WORKER, Row, assert_passes, in_background, pause, row

LEASE = 2.0
SETTLE = 90.0
NETWORKED = ["postgres", "mariadb", "zookeeper", "amqp"]  # the full tier's other brokers
OWN = {
    "redis": "aof_redis",
    "postgres": "own_postgres",
    "zookeeper": "own_zookeeper",
    "amqp": "own_rabbitmq",
    "mariadb": "own_mariadb",
}


def broker_url(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, lease: float = LEASE
) -> tuple[str, str]:
    """(broker, backend) on servers of the test's own, with a short lease."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/broker.db"
        return f"{url}?lease_timeout={lease:g}", f"sqlite:///{tmp_path}/results.db"
    server: OwnServer = request.getfixturevalue(OWN[kind])
    shared_store = kind in ("redis", "postgres", "mariadb")  # a result backend too
    backend = server.url if shared_store else f"sqlite:///{tmp_path}/results.db"
    return f"{server.url}?lease_timeout={lease:g}", backend


def started(made: Row, at_least: int) -> bool:
    return sum(made.ledger.runs("start").values()) >= at_least


@pytest.mark.parametrize("kind", tier(["redis", "sqlite"], NETWORKED))
def test_worker_sigkill_mid_task(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    soak_seed: int,
    repetition: int,
) -> None:
    rng = random.Random(soak_seed + repetition)
    broker, backend = broker_url(kind, request, tmp_path)
    with row(f"worker-sigkill-{kind}-{repetition}", broker, backend, tmp_path) as made:
        worker = made.start_worker()
        made.send(30, seconds=0.3)
        assert wait_until(lambda: started(made, 4 + rng.randrange(8)), 30), worker.output()
        worker.kill()
        assert made.ledger.mark_fault() > 0, "the kill found tasks running"
        made.start_worker()
        assert_passes(made.settle(SETTLE))


@pytest.mark.parametrize("kind", tier(["redis"], NETWORKED))
def test_worker_sigterm_mid_task(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    broker, backend = broker_url(kind, request, tmp_path)
    with row(f"worker-sigterm-{kind}", broker, backend, tmp_path) as made:
        worker = made.start_worker()
        made.send(20, seconds=0.3)
        assert wait_until(lambda: started(made, 4), 30), worker.output()
        worker.stop()
        assert worker.process.returncode == 0, worker.output()
        made.start_worker()
        assert_passes(made.settle(SETTLE), duplicates_allowed=False)


@pytest.mark.parametrize("kind", tier(["redis"], NETWORKED))
def test_broker_killed_mid_publish_and_restarted(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    soak_seed: int,
    repetition: int,
) -> None:
    rng = random.Random(soak_seed + repetition)
    broker, backend = broker_url(kind, request, tmp_path)
    server: OwnServer = request.getfixturevalue(OWN[kind])
    with row(f"broker-restart-{kind}-{repetition}", broker, backend, tmp_path) as made:
        made.start_worker()
        sender = in_background(lambda: made.send(200, seconds=0.01))
        assert wait_until(lambda: started(made, 20 + rng.randrange(40)), 30)
        server.kill()
        made.ledger.mark_fault(publishing=1)
        pause(1.0 + rng.random())  # the outage
        server.start()
        sender.join(90)
        assert not sender.is_alive()
        assert_passes(made.settle(SETTLE))


@pytest.mark.parametrize("kind", tier(["redis"], NETWORKED))
def test_connection_reset_mid_consume(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    broker, backend = broker_url(kind, request, tmp_path)
    server: OwnServer = request.getfixturevalue(OWN[kind])
    proxy = TCPProxy("127.0.0.1", server.port)
    through = broker.replace(f":{server.port}", f":{proxy.port}", 1)
    try:
        with row(f"connection-reset-{kind}", broker, backend, tmp_path) as made:
            made.start_worker(broker=through)
            made.send(150, seconds=0.02)
            for at_least in (20, 60, 100):
                assert wait_until(lambda n=at_least: started(made, n), 60)
                assert wait_until(lambda: proxy.open_sockets > 0, 10), "the worker reconnects"
                assert proxy.reset() > 0
                made.ledger.mark_fault()
            assert_passes(made.settle(SETTLE))
    finally:
        proxy.close()


@pytest.mark.parametrize("kind", tier(["redis"], NETWORKED))
def test_a_task_running_3x_the_lease_runs_once(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    lease = 1.0
    broker, backend = broker_url(kind, request, tmp_path, lease)
    with row(f"long-task-{kind}", broker, backend, tmp_path, concurrency=2) as made:
        made.start_worker()
        made.start_worker()  # a competitor that would take an expired lease
        made.send(4, seconds=3 * lease + 0.5)
        assert_passes(made.settle(SETTLE), duplicates_allowed=False)


@pytest.mark.parametrize("kind", tier(["redis"], NETWORKED))
def test_200ms_latency(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    broker, backend = broker_url(kind, request, tmp_path)
    server: OwnServer = request.getfixturevalue(OWN[kind])
    proxy = TCPProxy("127.0.0.1", server.port)
    proxy.latency, proxy.jitter = 0.2, 0.05
    through = broker.replace(f":{server.port}", f":{proxy.port}", 1)
    try:
        with row(f"latency-200ms-{kind}", through, backend, tmp_path) as made:
            made.start_worker()
            made.send(10, seconds=0.05)
            assert_passes(made.settle(SETTLE), duplicates_allowed=False)
    finally:
        proxy.close()


def test_1mb_messages_through_a_segment_slicing_proxy(aof_redis: OwnServer, tmp_path: Path) -> None:
    proxy = TCPProxy("127.0.0.1", aof_redis.port)
    proxy.slice_size = 1400  # one Ethernet segment: a 1 MB frame arrives in ~750 reads
    through = f"redis://127.0.0.1:{proxy.port}/0?lease_timeout={LEASE:g}"
    try:
        with row("1mb-sliced-redis", through, through.split("?")[0], tmp_path) as made:
            made.start_worker()
            made.send(5, payload="x" * 1_000_000)
            assert_passes(made.settle(SETTLE), duplicates_allowed=False)
    finally:
        proxy.close()


BACKENDS = {
    "redis": redis_with_aof,
    "postgres": postgres_cluster,
    "memcached": memcached_with_limit,
}


@full_tier
@pytest.mark.parametrize("backend_kind", sorted(BACKENDS))
def test_result_backend_killed_mid_store_and_down_for_30_s(
    backend_kind: str, aof_redis: OwnServer, tmp_path: Path
) -> None:
    backend_server = BACKENDS[backend_kind]()
    broker = f"{aof_redis.url}?lease_timeout={LEASE:g}"
    name = f"backend-down-30s-{backend_kind}"
    try:
        with row(name, broker, backend_server.url, tmp_path) as made:
            made.start_worker()
            made.send(60, seconds=0.05)
            assert wait_until(lambda: started(made, 10), 30)  # results are being stored
            backend_server.kill()
            pause(30.0)  # the outage
            backend_server.start()
            assert_passes(made.settle(SETTLE), duplicates_allowed=False)
            assert made.app.transport.dead_letters(made.queue) == []
    finally:
        backend_server.stop()


@full_tier
def test_memcached_eviction_loses_results_never_tasks(aof_redis: OwnServer, tmp_path: Path) -> None:
    """Results far over Memcached's memory evict one another: a result may be gone, but
    every task ran, once."""
    cache = memcached_with_limit(2)
    broker = f"{aof_redis.url}?lease_timeout={LEASE:g}"
    try:
        with row("memcached-eviction", broker, cache.url, tmp_path) as made:
            made.start_worker()
            made.send(150, result_size=50_000)  # 7.5 MB of results into 2 MB
            assert_passes(made.settle(SETTLE), duplicates_allowed=False)
    finally:
        cache.stop()


@full_tier
def test_blackhole_longer_than_the_lease(aof_redis: OwnServer, tmp_path: Path) -> None:
    proxy = TCPProxy("127.0.0.1", aof_redis.port)
    through = f"redis://127.0.0.1:{proxy.port}/0?lease_timeout={LEASE:g}"
    broker = f"{aof_redis.url}?lease_timeout={LEASE:g}"
    try:
        with row("blackhole-redis", broker, aof_redis.url, tmp_path) as made:
            made.start_worker(broker=through)
            made.start_worker()  # direct: takes over what the partitioned one held
            made.send(40, seconds=0.3)
            assert wait_until(lambda: started(made, 6), 30)
            proxy.blackhole = True
            made.ledger.mark_fault()
            pause(3 * LEASE)  # the partition
            proxy.heal()
            assert_passes(made.settle(SETTLE))
    finally:
        proxy.close()


@full_tier
def test_a_poison_task_ends_as_a_failure_at_max_deliveries(
    aof_redis: OwnServer, tmp_path: Path
) -> None:
    """A task that kills its worker on every run: a supervisor (this test) restarts the
    worker each time; with no hot loop (one worker death per delivery), its last allowed
    delivery finds the run before it lost with its worker and stores WorkerLostError
    instead of running it again (nothing silent in the dead letters), and the other tasks
    all run. One slot and no read-ahead: a message held beside the poison at each death
    would have its count raised too (see docs/guarantees.md, "What is not promised")."""
    deliveries = 3
    broker = f"{aof_redis.url}?lease_timeout=1&max_deliveries={deliveries}"
    with row("poison-redis", broker, aof_redis.url, tmp_path, concurrency=1) as made:
        made.start_worker(prefetch_multiplier=1)
        poison = made.app.send_task(KILL_WORKER, ("poison",), queue=made.queue)
        made.send(20, seconds=0.05)
        deaths = 0
        deadline = time.monotonic() + 60
        while not poison.ready() and time.monotonic() < deadline:
            if made.workers[-1].process.poll() is not None:
                deaths += 1
                made.ledger.mark_fault()
                made.start_worker(prefetch_multiplier=1)
            time.sleep(0.1)
        with pytest.raises(WorkerLostError, match="worker lost while running"):
            poison.get(timeout=1)
        assert deaths == deliveries - 1, "one worker death per delivery but the last"
        assert_passes(made.settle(SETTLE))
        assert made.app.transport.dead_letters(made.queue) == []


@full_tier
def test_rabbitmq_memory_alarm_during_publish(own_rabbitmq: OwnServer, tmp_path: Path) -> None:
    """A memory alarm blocks publishing connections: publishes wait (up to the transport's
    blocked_connection_timeout) and go through once it clears; nothing is lost."""
    broker = f"{own_rabbitmq.url}?lease_timeout={LEASE:g}"
    backend = f"sqlite:///{tmp_path}/results.db"
    with row("memory-alarm-amqp", broker, backend, tmp_path) as made:
        made.start_worker()
        sender = in_background(lambda: made.send(1000))
        assert wait_until(lambda: len(made.ledger.publishes) >= 50, 30)
        rabbitmqctl(own_rabbitmq, "set_vm_memory_high_watermark", "0.000001")
        pause(1.0)  # the alarm reaches the connection
        during = len(made.ledger.publishes)
        pause(2.0)  # the alarm
        assert len(made.ledger.publishes) <= during + 1, "publishing was blocked"
        assert len(made.ledger.publishes) < 1000
        rabbitmqctl(own_rabbitmq, "set_vm_memory_high_watermark", "0.4")
        sender.join(60)
        assert not sender.is_alive()
        assert_passes(made.settle(SETTLE), duplicates_allowed=False)


def test_a_connection_cut_mid_frame_during_publish(aof_redis: OwnServer, tmp_path: Path) -> None:
    """The producer's connection is cut halfway through a 1 MB frame: the publish is retried
    with the same message id and arrives; nothing is lost, at most that one runs twice."""
    proxy = TCPProxy("127.0.0.1", aof_redis.port)
    through = f"redis://127.0.0.1:{proxy.port}/0?lease_timeout={LEASE:g}"
    broker = f"{aof_redis.url}?lease_timeout={LEASE:g}"
    try:
        with row("cut-mid-frame-redis", through, aof_redis.url, tmp_path) as made:
            made.start_worker(broker=broker)
            made.app.transport.size(made.queue)  # connected before the fault is armed
            proxy.cut_after = 1_500_000  # inside the second message's frame
            made.send(3, payload="y" * 1_000_000)
            assert proxy.cuts == 1, "the cut happened mid-publish"
            made.ledger.mark_fault(publishing=1)
            assert_passes(made.settle(SETTLE))
    finally:
        proxy.close()
