"""`conveyor worker --metrics-port`: one port for all the command's processes, parsed with
prometheus_client's own parser after a known run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor import Conveyor
from conveyor.testing.waiting import STARTUP, wait_until
from tests.monitoring.cluster import CONVEYOR, Cluster, free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(f"sqlite:///{tmp_path}/b.db", f"sqlite:///{tmp_path}/r.db", tmp_path)
    yield running
    running.stop()


def _samples(port: int) -> Samples:
    try:
        text = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx2.HTTPError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_known_run_counted_across_two_processes(cluster: Cluster) -> None:
    port = free_port()
    env = {**cluster.env(), "CONVEYOR_WORKER_PROCESSES": "2"}
    log = cluster.workdir / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CONVEYOR, "worker", "-c", "2", "-n", "m@test", "--metrics-port", str(port)],
            cwd=cluster.workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    cluster.processes.append(process)
    assert wait_until(lambda: " ready: " in log.read_text(), STARTUP), log.read_text()
    app: Conveyor = cluster.client_app()
    try:
        add, fail = (app.tasks[f"tests.monitoring.dash_tasks.{n}"] for n in ("add", "fail"))
        results = [add.delay(i, i) for i in range(6)]
        failed = fail.delay("x")
        assert [r.get(timeout=20) for r in results] == [0, 2, 4, 6, 8, 10]
        failed.get(timeout=20, propagate=False)
    finally:
        app.close()
    add_name, fail_name = "tests.monitoring.dash_tasks.add", "tests.monitoring.dash_tasks.fail"

    def counted(name: str, state: str) -> float:
        key = ("conveyor_tasks_total", (("name", name), ("state", state)))
        return _samples(port).get(key, 0.0)

    assert wait_until(lambda: counted(add_name, "SUCCESS") == 6.0, 15), log.read_text()
    assert wait_until(lambda: counted(fail_name, "FAILURE") == 1.0, 15)
    found = _samples(port)
    assert counted(add_name, "RECEIVED") == 6.0 and counted(add_name, "STARTED") == 6.0
    assert found[("conveyor_task_runtime_seconds_count", (("name", add_name),))] == 6.0
    assert found[("conveyor_queue_ready", (("queue", cluster.queue),))] == 0.0
    up = {labels for name, labels in found if name == "conveyor_worker_up"}
    hosts = {dict(labels)["hostname"] for labels in up}
    assert hosts == {"m@test", "m@test-1"}, found  # both processes, one port


def test_tasks_run_by_process_pool_children_are_counted(cluster: Cluster) -> None:
    port = free_port()
    log = cluster.workdir / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CONVEYOR, "worker", "-P", "processes", "-c", "2", "-n", "p@test",
             "--metrics-port", str(port)],
            cwd=cluster.workdir, env=cluster.env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    cluster.processes.append(process)
    assert wait_until(lambda: " ready: " in log.read_text(), STARTUP), log.read_text()
    app: Conveyor = cluster.client_app()
    try:
        add = app.tasks["tests.monitoring.dash_tasks.add"]
        assert [add.delay(i, 1).get(timeout=20) for i in range(4)] == [1, 2, 3, 4]
    finally:
        app.close()
    key = (
        "conveyor_tasks_total",
        (("name", "tests.monitoring.dash_tasks.add"), ("state", "SUCCESS")),
    )
    assert wait_until(lambda: _samples(port).get(key) == 4.0, 15), _samples(port)
