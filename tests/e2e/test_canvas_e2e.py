"""Workflows through real worker processes (started by the CLI) on real brokers and
backends: the three chain forms, immutable and partial arguments, an error mid-chain, a
group of 100, a group inside a chain, a retried and a failing chord header, a rejected
cycle, and a chord whose header worker is SIGKILLed mid-task (the body runs once)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, chain, chord, group, states
from conveyor.canvas import InvalidWorkflow
from conveyor.core.registry import create_transport
from conveyor.testing.waiting import wait_until
from tests.e2e import e2e_tasks as t
from tests.e2e.conftest import Urls, WorkerProcess, client_app, matrix_row, start_worker

TIMEOUT = 30.0
# The brokers of the list (mysql, the one more in the e2e matrix, keeps to the
# task tests, to hold this module's time down); each with its result backend there.
CANVAS_ROWS = ["amqp", "postgresql", "redis", "sqlite", "zookeeper"]


@pytest.fixture(scope="module", params=CANVAS_ROWS)
def urls(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Urls:
    """The e2e matrix's rows for CANVAS_ROWS (overrides conftest's `urls` here)."""
    return matrix_row(request, tmp_path_factory)


@pytest.fixture(scope="module")
def worker(urls: Urls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One worker process, one thread (no sibling processes: quicker to start)."""
    queue = f"e2e_canvas_{uuid.uuid4().hex[:12]}"
    process = start_worker(urls, queue, tmp_path_factory.mktemp("logs") / "canvas.log", "-c", "1")
    yield process
    assert process.stop() == 0, process.output()
    _delete_queue(urls, queue)


def _delete_queue(urls: Urls, queue: str) -> None:
    transport = create_transport(urls.broker)
    try:
        transport.delete(queue)
    finally:
        transport.close()


# A step that a worker sends is routed by the worker's settings unless it names a queue;
# these workers listen on a queue of their own, so every workflow names it.


def test_three_chain_forms(app: Conveyor) -> None:
    q = app.conf.task_default_queue
    assert (t.add.s(1, 1) | t.add.s(2) | t.add.s(3)).apply_async(queue=q).get(TIMEOUT) == 7
    assert chain(t.add.s(1, 1), t.add.s(10)).apply_async(queue=q).get(TIMEOUT) == 12
    first, second = t.add.s(100).set(queue=q), t.describe.s("url").set(queue=q)
    first_result, second_result = first.freeze(), second.freeze()
    sent = t.add.apply_async((1, 2), link=[first, second])
    assert first_result.get(timeout=TIMEOUT) == 103
    described = second_result.get(timeout=TIMEOUT)
    assert described["args"] == [3, "url"] and described["parent_id"] == sent.id


def test_immutable_partial_and_parent(app: Conveyor) -> None:
    result = (t.add.s(1, 1) | t.add.si(5, 5) | t.add.s(1)).apply_async(
        queue=app.conf.task_default_queue
    )
    assert result.get(timeout=TIMEOUT) == 11
    assert result.parent.get(timeout=TIMEOUT) == 10
    assert result.parent.parent.get(timeout=TIMEOUT) == 2


def test_an_error_mid_chain(app: Conveyor) -> None:
    workflow = t.add.s(1, 1) | t.explode.si("mid") | t.add.s(1)
    result = workflow.apply_async(queue=app.conf.task_default_queue)
    with pytest.raises(t.Boom, match="mid"):
        result.get(timeout=TIMEOUT)
    assert result.state == states.FAILURE and result.parent.failed()


def test_a_group_of_100_and_a_group_inside_a_chain(app: Conveyor) -> None:
    hundred = group(t.add.s(i, i) for i in range(100)).apply_async()
    assert hundred.get(timeout=TIMEOUT) == [2 * i for i in range(100)]
    workflow = t.add.s(1, 1) | group(t.add.s(1), t.add.s(2)) | t.tsum.s()
    assert workflow.apply_async(queue=app.conf.task_default_queue).get(TIMEOUT) == 7


def test_chord_with_a_retried_and_with_a_failing_header(app: Conveyor) -> None:
    tag = uuid.uuid4().hex
    header = [t.add.s(1, 1), t.flaky.s(1), t.add.s(2, 2)]
    q = app.conf.task_default_queue
    values = chord(header, t.collect.s(tag)).apply_async(queue=q).get(timeout=TIMEOUT)
    assert values[0] == 2 and values[1]["retries"] == 1 and values[2] == 4
    assert app.backend.incr(f"runs-{tag}", 0) == 1
    failing = chord([t.add.s(1, 1), t.explode.s("header")], t.collect.s(tag)).apply_async(queue=q)
    with pytest.raises(t.Boom, match="header"):
        failing.get(timeout=TIMEOUT)
    assert app.backend.incr(f"runs-{tag}", 0) == 1


def test_a_cycle_is_rejected(app: Conveyor) -> None:
    a, b = t.add.s(1, 1), t.add.s(1)
    a.link(b)
    with pytest.raises(InvalidWorkflow, match="cycle"):
        b.link(a)


# SIGKILL during a chord header, on two brokers told to return a dead worker's messages
# quickly (lease_timeout=2). (AMQP returns them at once when the connection closes.)
KILL_MATRIX = {
    "redis": ("redis_url", "redis_url"),
    "sqlite": ("sqlite", "sqlite"),
}


@pytest.fixture(params=sorted(KILL_MATRIX))
def kill_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Urls]:
    broker, backend = KILL_MATRIX[request.param]
    if broker == "sqlite":
        urls = Urls(f"sqlite:///{tmp_path}/kill.db", f"sqlite:///{tmp_path}/kill.db")
    else:
        urls = Urls(request.getfixturevalue(broker), request.getfixturevalue(backend))
    joiner = "&" if "?" in urls.broker else "?"
    yield Urls(f"{urls.broker}{joiner}lease_timeout=2", urls.backend)


def test_chord_survives_a_sigkill_of_the_header_worker(kill_urls: Urls, tmp_path: Path) -> None:
    queue = f"e2e_kill_{uuid.uuid4().hex[:12]}"
    tag = uuid.uuid4().hex
    doomed = start_worker(kill_urls, queue, tmp_path / "doomed.log", "-c", "2")
    app = client_app(kill_urls, queue)
    try:
        header = [t.add.s(i, i) for i in range(5)] + [t.stall_first.s(100, tag)]
        result = chord(header, t.collect.s(tag)).apply_async(queue=queue)
        assert wait_until(lambda: app.AsyncResult(f"stalled-{tag}").exists(), TIMEOUT)
        for pid in doomed.pids():
            os.kill(pid, signal.SIGKILL)
        doomed.process.wait(10)
        survivor = start_worker(kill_urls, queue, tmp_path / "survivor.log", "-c", "1")
        try:
            assert result.get(timeout=TIMEOUT) == [0, 2, 4, 6, 8, 100]
        finally:
            assert survivor.stop() == 0, survivor.output()
        assert app.backend.incr(f"runs-{tag}", 0) == 1
    finally:
        app.close()
        _delete_queue(kill_urls, queue)
