"""Workflows under task_always_eager: every step runs in this process, no worker."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Conveyor, chain, chord, group
from conveyor.app.eager import EagerResult
from tests.canvas.conftest import Boom, Tasks


@pytest.fixture
def eager(app: Conveyor, tasks: Tasks) -> Tasks:
    app.conf.task_always_eager = True
    return tasks


def test_chains_groups_and_chords_run_here(eager: Tasks) -> None:
    add, tsum = eager.add, eager.tsum
    result = (add.s(1, 1) | add.s(2) | add.s(3)).delay()
    assert isinstance(result, EagerResult) and result.get() == 7
    assert result.parent.get() == 4 and result.parent.parent.get() == 2
    assert chain(add.s(1, 1), group(add.s(1), add.s(2)), tsum.s())().get() == 7
    assert group(add.s(i, i) for i in range(5)).delay().get() == [0, 2, 4, 6, 8]
    result = chord([add.s(1, 1), add.s(2, 2)])(tsum.s())
    assert result.get() == 6 and result.parent.get() == [2, 4]
    assert eager.app.transport.size("default") == 0, "nothing went to the broker"


def test_a_link_chain_runs_eagerly_to_its_end(eager: Tasks) -> None:
    middle = eager.count.s("middle")
    middle.link(eager.count.s("last"))
    eager.add.apply_async((1, 1), link=middle)
    assert (eager.runs("middle"), eager.runs("last")) == (1, 1)
    assert eager.app.transport.size("default") == 0


def test_an_error_stops_an_eager_chain(eager: Tasks) -> None:
    result = (eager.add.s(1, 1) | eager.fail.s() | eager.count.s("after")).delay()
    with pytest.raises(Boom):
        result.get()
    assert eager.runs("after") == 0
    failing = chord([eager.add.s(1, 1), eager.fail.s(2)], eager.count.s("body"))()
    with pytest.raises(Boom):
        failing.get()
    assert eager.runs("body") == 0


def test_the_steps_after_an_eager_failure_are_marked_not_run(eager: Tasks) -> None:
    """As on a worker: a handle on a later step, made from its id (no parents to follow),
    raises the first error at once instead of waiting on a backend that has nothing."""
    result = (eager.add.s(1, 1) | eager.fail.s() | eager.count.s("after")).delay()
    later = eager.app.AsyncResult(result.id)
    with pytest.raises(Boom):
        later.get(timeout=1)
    assert later.state == "FAILURE" and eager.runs("after") == 0
    failing = chord([eager.fail.s(1)], eager.count.s("body"))()
    with pytest.raises(Boom):
        eager.app.AsyncResult(failing.id).get(timeout=1)


def test_an_eager_groups_result_reads_its_members_outcomes(eager: Tasks) -> None:
    """ready(), successful(), failed() and completed_count() see the eager outcomes (kept
    in memory), not a backend that has none."""
    done = group(eager.add.s(1, 1), eager.add.s(2, 2)).delay()
    assert done.ready() and done.successful() and done.completed_count() == 2
    mixed = group(eager.add.s(1, 1), eager.fail.s()).delay()
    assert mixed.ready() and mixed.failed() and mixed.completed_count() == 1


def test_eager_errbacks_are_called_as_a_worker_calls_them(app: Conveyor) -> None:
    """Celery's (request, exc, traceback) errback is called with the failed run's request;
    an errback taking the task id runs as a task; `task.apply()` runs both here too."""
    seen: list[Any] = []

    @app.task
    def fail() -> None:
        raise KeyError("gone")

    @app.task
    def on_error(request: Any, exc: BaseException, traceback: str) -> None:
        seen.append((request.id, exc, "KeyError" in traceback))

    @app.task
    def on_error_id(task_id: str) -> None:
        seen.append(task_id)

    result = fail.apply(link_error=[on_error.s(), on_error_id.s()])
    assert result.failed()
    assert seen == [(result.id, result.result, True), result.id]
    assert app.transport.size("default") == 0


def test_a_failed_eager_chord_header_calls_the_bodys_errbacks(eager: Tasks) -> None:
    """As a worker's join does: the body's errbacks receive the failed header task."""
    seen: list[Any] = []

    @eager.app.task
    def on_error(request: Any, exc: BaseException, traceback: str) -> None:
        seen.append((request.id, type(exc)))

    body = eager.count.s("body")
    body.link_error(on_error.s())
    header = [eager.add.s(1, 1), eager.fail.s(2)]
    result = chord(header, body)()
    with pytest.raises(Boom):
        result.get()
    failed = result.parent.results[1]
    assert seen == [(failed.id, Boom)] and eager.runs("body") == 0
