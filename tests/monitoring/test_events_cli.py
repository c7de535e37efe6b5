"""`conveyor events`: --dump prints JSON lines, the live view draws workers, rates and
failures; real processes on the SQLite default."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.backends.events.base import Event
from conveyor.testing.waiting import STARTUP, wait_until
from tests.monitoring.cluster import CONVEYOR, Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(f"sqlite:///{tmp_path}/b.db", f"sqlite:///{tmp_path}/r.db", tmp_path)
    worker_log = running._start("worker", "worker", "-c", "2", "-n", "cli@test")
    assert wait_until(lambda: " ready: " in worker_log.read_text(), STARTUP), worker_log.read_text()
    yield running
    running.stop()


def _watch(cluster: Cluster, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    out = cluster.workdir / f"events{len(cluster.processes)}.out"
    env = {**cluster.env(), "COLUMNS": "150", "LINES": "30"}  # the terminal's size
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [*CONVEYOR, "events", *args], cwd=cluster.workdir, env=env, stdout=sink
        )
    cluster.processes.append(process)
    return process, out


def test_dump_and_the_live_view(cluster: Cluster) -> None:
    dump, dumped = _watch(cluster, "--dump")
    view, viewed = _watch(cluster, "--frequency", "4")
    assert wait_until(lambda: dumped.exists() and viewed.stat().st_size > 0, 20)
    app = cluster.client_app()
    try:
        tasks = app.tasks
        ok = tasks["tests.monitoring.dash_tasks.add"].delay(2, 3)
        bad = tasks["tests.monitoring.dash_tasks.fail"].delay("cli-marker")
        assert ok.get(timeout=20) == 5
        bad.get(timeout=20, propagate=False)
    finally:
        app.close()

    def dumped_events() -> list[dict[str, object]]:
        lines = dumped.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def types_of(task_id: str) -> list[str]:
        """In timestamp order: dumped in arrival order, where the client's task-sent (its own
        flush thread) may come after the worker's events."""
        events = [e for e in dumped_events() if e.get("uuid") == task_id]
        return [str(e["type"]) for e in sorted(events, key=lambda e: float(str(e["timestamp"])))]

    done = ["task-sent", "task-received", "task-started", "task-succeeded"]
    dumped_tail = dumped.read_text
    assert wait_until(lambda: sorted(types_of(ok.id)) == sorted(done), 20), dumped_tail()[-2000:]
    assert [kind for kind in types_of(ok.id) if kind != "task-sent"] == done[1:]
    assert wait_until(lambda: "task-failed" in types_of(bad.id), 20)
    failed = next(e for e in dumped_events() if e["type"] == "task-failed")
    assert "cli-marker" in str(failed["exception"]) and failed["hostname"] == "cli@test"

    def frame() -> str:
        text = viewed.read_text(errors="replace")
        return text.rsplit("\x1b[2J", 1)[-1]

    assert wait_until(lambda: "broken on purpose cli-marker" in frame(), 20), frame()
    last = frame()
    assert "cli@test" in last and "online" in last
    assert "tests.monitoring.dash_tasks.add" in last
    lines = last.splitlines()
    assert max(map(len, lines)) <= 150 and len(lines) <= 30  # cut to the terminal
    for process in (dump, view):
        process.terminate()
        assert process.wait(10) is not None


def test_process_pool_children_send_their_task_events(tmp_path: Path) -> None:
    running = Cluster(f"sqlite:///{tmp_path}/b.db", f"sqlite:///{tmp_path}/r.db", tmp_path)
    log = running._start("worker", "worker", "-P", "processes", "-c", "1", "-n", "pp@test")
    try:
        assert wait_until(lambda: " ready: " in log.read_text(), STARTUP), log.read_text()
        app = running.client_app()
        try:
            result = app.tasks["tests.monitoring.dash_tasks.add"].delay(20, 22)
            assert result.get(timeout=30) == 42
            done = ["task-sent", "task-received", "task-started", "task-succeeded"]

            # Stored in arrival order: the client's task-sent (stamped after its publish
            # returned, flushed by the client's own thread) may come after the worker's.
            # The worker's events are ordered by their timestamps (one clock, causal).
            def timeline() -> list[Event]:
                events = app.events.store.timeline(result.id)
                return sorted(events, key=lambda event: float(event["timestamp"]))

            def types() -> list[str]:
                return [event["type"] for event in timeline()]

            assert wait_until(lambda: sorted(types()) == sorted(done), 15), types()
            assert [kind for kind in types() if kind != "task-sent"] == done[1:], types()
            (started,) = (event for event in timeline() if event["type"] == "task-started")
            assert started["hostname"] == "pp@test" and started["pid"] != running.processes[0].pid
        finally:
            app.close()
    finally:
        running.stop()
