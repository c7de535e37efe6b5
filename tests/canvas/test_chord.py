"""Chords on an in-process worker: the body runs once with the ordered header results,
through retries, duplicate and redelivered header messages, and header failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor, Task, chord, group, states
from conveyor.app import protocol
from conveyor.backends.base import ResultRecord
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker
from tests.canvas.conftest import Boom, Tasks

StartWorker = Callable[..., Worker]


def test_chord_body_gets_the_ordered_header_results(
    tasks: Tasks, start_worker: StartWorker
) -> None:
    start_worker(concurrency=4)
    result = chord(tasks.add.s(i, i) for i in range(20))(tasks.count.s("body"))
    assert result.get(timeout=20) == [2 * i for i in range(20)]
    assert result.parent.get(timeout=1) == [2 * i for i in range(20)]
    assert tasks.runs("body") == 1
    assert chord([tasks.add.s(1, 1)], tasks.tsum.s()).delay().get(timeout=10) == 2


def test_a_chord_with_an_empty_header_runs_the_body_with_nothing(
    tasks: Tasks, start_worker: StartWorker
) -> None:
    start_worker()
    assert chord([], tasks.tsum.s())().get(timeout=10) == 0


def test_a_retried_header_task_counts_once(
    app: Conveyor, tasks: Tasks, start_worker: StartWorker
) -> None:
    @app.task(bind=True, max_retries=3)
    def flaky(self: Task, value: int) -> int:
        if self.request.retries < 2:
            raise self.retry(countdown=0.05)
        return value

    start_worker()
    result = chord([flaky.s(1), tasks.add.s(1, 1), flaky.s(3)], tasks.count.s("body")).delay()
    assert result.get(timeout=20) == [1, 2, 3]
    assert tasks.runs("body") == 1


def _take_messages(app: Conveyor, count: int) -> list[Any]:
    deliveries: list[Any] = []
    while len(deliveries) < count:
        deliveries += app.transport.fetch("default", max_messages=count, timeout=1.0)
    return deliveries


def test_a_header_message_sent_twice_runs_the_body_once(
    app: Conveyor, tasks: Tasks, start_worker: StartWorker
) -> None:
    result = chord([tasks.add.s(i, 0) for i in range(4)], tasks.count.s("body")).delay()
    deliveries = _take_messages(app, 4)
    for delivery in deliveries:  # each sent twice (a publisher retry after a lost confirm)
        app.transport.publish("default", delivery.message)
        delivery.nack(requeue=True)
    worker = start_worker(concurrency=4)
    assert result.get(timeout=20) == [0, 1, 2, 3]
    assert wait_until(lambda: app.transport.size("default") == 0, timeout=10)
    worker.stop()  # lets what runs finish: a second body would have run or be queued
    assert tasks.runs("body") == 1 and app.transport.size("default") == 0


def test_a_header_task_redelivered_after_its_result_was_stored_is_counted(
    app: Conveyor, tasks: Tasks, start_worker: StartWorker
) -> None:
    """A worker died after storing a header task's result and before counting it: the
    message comes back (delivery count 2), is not run again, and is counted."""
    result = chord([tasks.add.s(i, 0) for i in range(3)], tasks.count.s("body")).delay()
    died, *others = _take_messages(app, 3)
    stored = protocol.decode(died.message, app.serializer)
    app.backend.store(ResultRecord(stored.id, states.SUCCESS, result=stored.args[0]))
    died.nack(requeue=True)
    for delivery in others:
        delivery.nack(requeue=True)
    start_worker()
    assert result.get(timeout=20) == [0, 1, 2]
    assert tasks.runs("body") == 1


def test_a_failing_header_task_fails_the_body_and_calls_its_errback_once(
    tasks: Tasks, start_worker: StartWorker
) -> None:
    start_worker(concurrency=4)
    body = tasks.count.s("body")
    body.link_error(tasks.count.si("e", "errback"))
    header = [tasks.add.s(1, 1), tasks.fail.s(1), tasks.fail.s(2), tasks.add.s(2, 2)]
    result = chord(header, body).delay()
    with pytest.raises(Boom, match="failed with"):
        result.get(timeout=20)
    assert wait_until(lambda: tasks.runs("errback") >= 1, timeout=10)
    assert wait_until(lambda: result.parent.ready(), timeout=10)
    record = tasks.app.backend.get(result.id)
    assert record is not None and record.meta["not_run"] is True
    assert tasks.runs("errback") == 1 and tasks.runs("body") == 0


def test_group_then_task_with_pipe_is_a_chord(tasks: Tasks, start_worker: StartWorker) -> None:
    start_worker()
    workflow = group(tasks.add.s(1, 1), tasks.add.s(2, 2)) | tasks.tsum.s()
    assert workflow.delay().get(timeout=10) == 6


def test_chord_body_can_be_a_chain(tasks: Tasks, start_worker: StartWorker) -> None:
    start_worker()
    result = chord([tasks.add.s(1, 1), tasks.add.s(2, 2)])(tasks.tsum.s() | tasks.mul.s(10))
    assert result.get(timeout=10) == 60
    assert result.parent.get(timeout=1) == 6
    assert result.parent.parent.get(timeout=1) == [2, 4]


def test_the_join_writes_linear_bytes(tasks: Tasks) -> None:
    """Each header message carries a small join entry, not the other header ids."""
    small = chord([tasks.add.s(i, i) for i in range(10)], tasks.tsum.s())
    large = chord([tasks.add.s(i, i) for i in range(200)], tasks.tsum.s())
    sizes = []
    for workflow in (small, large):
        workflow.delay()
        deliveries = _take_messages(tasks.app, len(workflow.header))
        sizes.append(max(len(d.message.body) for d in deliveries))
        for delivery in deliveries:
            delivery.ack()
    assert sizes[1] <= sizes[0] + 8, sizes


def test_nested_shapes(tasks: Tasks, start_worker: StartWorker) -> None:
    """Chains in groups and chord headers, a chord in a chord's header, a chord inside a
    chain, a group followed by a group."""
    start_worker(concurrency=4)
    add, tsum = tasks.add, tasks.tsum
    assert group(add.s(1, 1) | add.s(1), add.s(2, 2) | add.s(2)).delay().get(10) == [3, 6]
    assert chord([add.s(1, 1) | add.s(1), add.s(5, 5)], tsum.s()).delay().get(10) == 13
    inner = chord([add.s(1, 1), add.s(2, 2)], tsum.s())
    assert chord([inner, add.s(3, 3)], tsum.s()).delay().get(10) == 12
    assert (add.s(1, 1) | chord([add.s(1), add.s(2)], tsum.s()) | add.s(100)).delay().get(10) == 107
    assert (group(add.s(1, 1), add.s(2, 2)) | group(tsum.s(), tsum.s())).delay().get(10) == [6, 6]


def test_a_worker_killed_holding_the_chord_mark_does_not_lose_the_body(
    app: Conveyor, tasks: Tasks, start_worker: StartWorker
) -> None:
    """Every header result stored and counted, the one-time mark taken, then the worker
    died before sending the body: the last header message comes back and sends it."""
    from conveyor.canvas.join import counter_key, settled_key

    result = chord([tasks.add.s(i, 0) for i in range(3)], tasks.count.s("body")).delay()
    deliveries = _take_messages(app, 3)
    for delivery in deliveries:
        stored = protocol.decode(delivery.message, app.serializer)
        app.backend.store(ResultRecord(stored.id, states.SUCCESS, result=stored.args[0]))
        app.backend.incr(counter_key(result.parent.id))
    app.backend.incr(settled_key(result.parent.id))
    for delivery in deliveries[:2]:
        delivery.ack()
    deliveries[2].nack(requeue=True)  # the dead worker's message comes back
    start_worker()
    assert result.get(timeout=20) == [0, 1, 2]
    assert tasks.runs("body") == 1
