"""app.control and the inspect/control/status commands, against in-process workers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from conveyor import Conveyor
from conveyor.cli import main
from conveyor.contrib.testing.worker import start_worker
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker
from tests.celery_worker.control_app import app as cli_app
from tests.celery_worker.control_app import echo

StartWorker = Callable[..., Worker]


def _pongs(app: Conveyor, count: int) -> dict[str, Any]:
    replies: dict[str, Any] = {}
    wait_until(
        lambda: len(replies.update(app.control.inspect(timeout=0.3).ping()) or replies) >= count, 5
    )
    return replies


def test_ping_and_inspect_in_celerys_shapes_with_destination(
    app: Conveyor, start_worker: StartWorker
) -> None:
    one = start_worker(hostname="one@host")
    two = start_worker(hostname="two@host")
    assert _pongs(app, 2) == {"one@host": {"ok": "pong"}, "two@host": {"ok": "pong"}}
    pings = app.control.ping(timeout=0.5)
    assert sorted(pings, key=lambda d: next(iter(d))) == [
        {"one@host": {"ok": "pong"}},
        {"two@host": {"ok": "pong"}},
    ]
    only = app.control.inspect(timeout=0.5, destination=["two@host"])
    assert only.ping() == {"two@host": {"ok": "pong"}}
    queues = only.active_queues()["two@host"]
    assert [q["name"] for q in queues] == ["default"] and queues[0]["routing_key"] == "default"
    stats = only.stats()["two@host"]
    assert stats["pool"]["max-concurrency"] == two.pool.concurrency and stats["pid"] > 0
    assert only.scheduled() == {"two@host": []}
    assert "conveyor:" in only.report()["two@host"]["ok"]
    conf = only.conf()["two@host"]
    assert conf["broker_url"].startswith("memory://")
    assert one.hostname not in only.registered()


def test_stats_total_revoked_and_query_task(app: Conveyor, start_worker: StartWorker) -> None:
    release = threading.Event()

    @app.task
    def hold() -> str:
        release.wait(10)
        return "done"

    @app.task
    def quick() -> int:
        return 1

    worker = start_worker(hostname="w@host")
    assert quick.delay().get(timeout=5) == 1
    running = hold.delay()
    inspect = app.control.inspect(timeout=0.5, destination="w@host")
    assert wait_until(lambda: running.id in json.dumps(inspect.active()), 5)
    found = inspect.query_task(running.id)["w@host"]
    assert found[running.id][0] == "active" and found[running.id][1]["name"] == hold.name
    app.control.revoke("some-id", terminate=True)
    assert wait_until(lambda: "some-id" in inspect.revoked().get("w@host", []), 5)
    release.set()
    assert running.get(timeout=5) == "done"
    assert wait_until(lambda: inspect.stats()["w@host"]["total"].get(quick.name) == 1, 5)
    assert worker.hostname == "w@host"


def test_rate_limit_time_limit_and_pool_size_by_remote_control(
    app: Conveyor, start_worker: StartWorker
) -> None:
    @app.task
    def work() -> str:
        return "ok"

    worker = start_worker(hostname="w@host", concurrency=2)
    _pongs(app, 1)
    control = app.control
    to_w: dict[str, Any] = {"destination": ["w@host"], "reply": True}
    assert control.rate_limit(work.name, "5/s", **to_w) == [
        {"w@host": {"ok": "new rate limit set successfully"}}
    ]
    (bad,) = control.rate_limit(work.name, "fast", **to_w)
    assert "not N, N/s" in bad["w@host"]["error"]
    (unknown,) = control.rate_limit("no.such.task", "1/s", **to_w)
    assert "unknown task" in unknown["w@host"]["error"]
    assert control.time_limit(work.name, soft=5, hard=10, **to_w)[0]["w@host"]["ok"]
    assert (work.soft_time_limit, work.time_limit) == (5, 10)
    assert control.pool_grow(2, **to_w) == [{"w@host": {"ok": "pool now has 4 slots"}}]
    assert control.pool_shrink(3, **to_w) == [{"w@host": {"ok": "pool now has 1 slots"}}]
    assert worker.pool.concurrency == 1
    assert work.delay().get(timeout=5) == "ok"
    (refused,) = control.pool_grow(0, **to_w)
    assert "positive" in refused["w@host"]["error"]


def test_add_and_cancel_consumer(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task
    def where(x: int) -> int:
        return x

    worker = start_worker(hostname="w@host")
    _pongs(app, 1)
    to_w: dict[str, Any] = {"destination": ["w@host"], "reply": True}
    assert app.control.add_consumer("extra", **to_w)[0]["w@host"]["ok"].startswith("added")
    assert where.apply_async((3,), queue="extra").get(timeout=5) == 3
    assert "extra" in worker.consumer.queues
    assert app.control.cancel_consumer("extra", **to_w)[0]["w@host"]["ok"]
    assert worker.consumer.queues == ["default"]
    (last,) = app.control.cancel_consumer("default", **to_w)
    assert "only queue" in last["w@host"]["error"]


def test_shutdown_asks_for_a_warm_stop(app: Conveyor, start_worker: StartWorker) -> None:
    worker = start_worker(hostname="w@host")
    _pongs(app, 1)
    app.control.shutdown(destination=["nobody@else"])
    assert not worker._stop_requested.wait(0.3)
    app.control.shutdown(destination=["w@host"])
    assert worker._stop_requested.wait(5)


@pytest.fixture
def cli_worker() -> Iterator[Worker]:
    with start_worker(cli_app, pool="threads", hostname="cli@host") as worker:
        yield worker


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["-A", "tests.celery_worker.control_app", *args])


def test_inspect_control_and_status_commands(cli_worker: Worker) -> None:
    assert wait_until(lambda: _cli("status", "-t", "0.3").exit_code == 0, 5)
    status = _cli("status", "-t", "0.3")
    assert "cli@host: OK" in status.output and "1 node online." in status.output
    out = _cli("inspect", "ping", "-j", "-d", "cli@host")
    assert json.loads(out.output) == {"cli@host": {"ok": "pong"}}
    assert echo.name in _cli("inspect", "registered", "-d", "cli@host").output
    assert "default" in _cli("inspect", "active_queues", "-d", "cli@host").output
    out = _cli("control", "rate_limit", echo.name, "100/s", "-d", "cli@host")
    assert out.exit_code == 0 and "new rate limit set successfully" in out.output
    out = _cli("control", "rate_limit", echo.name)
    assert out.exit_code == 2 and "rate_limit needs TASK and RATE" in out.output
    out = _cli("inspect", "query_task")
    assert out.exit_code == 2 and "query_task needs" in out.output
    out = _cli("inspect", "ping", "-d", "nobody@host", "-t", "0.3")
    assert out.exit_code == 1 and "no worker replied" in out.output


def test_call_result_and_purge_commands(cli_worker: Worker) -> None:
    out = _cli("call", echo.name, "-a", '["hi"]', "--expires", "60")
    assert out.exit_code == 0, out.output
    task_id = out.output.strip()
    assert cli_app.AsyncResult(task_id).get(timeout=5) == "hi"
    assert _cli("result", task_id).output.split() == ["SUCCESS", '"hi"']
    late = _cli("call", echo.name, "-k", '{"value": 2}', "--eta", "2999-01-01T00:00:00Z")
    assert late.exit_code == 0
    assert "not an ISO 8601 time" in _cli("call", echo.name, "--eta", "soon").output
    cli_worker.stop()
    cli_app.send_task(echo.name, ("left",))
    refused = CliRunner().invoke(
        main, ["-A", "tests.celery_worker.control_app", "purge"], input="n\n"
    )
    assert refused.exit_code == 1 and cli_app.transport.size("default") == 1
    purged = _cli("purge", "-f")
    assert purged.exit_code == 0 and "default: 1 removed" in purged.output


def test_result_traceback_and_shell(cli_worker: Worker) -> None:
    failed = cli_app.send_task(echo.name, (), {"wrong": 1})
    failed.get(timeout=5, propagate=False)
    out = _cli("result", failed.id, "--traceback")
    assert out.exit_code == 0 and out.output.startswith("Traceback") and "TypeError" in out.output
    assert "FAILURE" not in out.output.splitlines()[0]
    shell = CliRunner().invoke(
        main,
        ["-A", "tests.celery_worker.control_app", "shell"],
        input="print('tasks:', echo.name, app.main)\n",
    )
    assert f"tasks: {echo.name} control_app" in shell.output
