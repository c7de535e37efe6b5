"""Chains run by an in-process worker on the memory broker: the three forms, partial and
immutable arguments, `.parent`, an error mid-chain, chains and groups inside chains."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Conveyor, GroupResult, chain, group, states
from conveyor.app.exceptions import TaskRevokedError
from conveyor.backends.base import ResultRecord
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker
from tests.canvas.conftest import Boom, Tasks, register


def test_pipe_and_chain_pass_each_result_on(shared: Tasks) -> None:
    add = shared.add
    result = (add.s(1, 1) | add.s(2) | add.s(3)).apply_async()
    assert result.get(timeout=10) == 7
    assert chain(add.s(1, 1), add.s(10), shared.mul.s(3))().get(timeout=10) == 36
    assert chain(add.s(1), add.s(2)).apply_async((5,)).get(timeout=10) == 8


def test_parent_walks_back_to_the_first_step(shared: Tasks) -> None:
    add = shared.add
    result = (add.s(1, 1) | add.s(2) | add.s(3)).delay()
    assert result.get(timeout=10) == 7
    assert result.parent.get(timeout=5) == 4
    assert result.parent.parent.get(timeout=5) == 2
    assert result.parent.parent.parent is None
    # Known from the stored records too, in a process that did not build the chain.
    fresh = shared.app.AsyncResult(result.id)
    assert fresh.parent is not None and fresh.parent.id == result.parent.id
    assert fresh.parent.parent.id == result.parent.parent.id


def test_immutable_steps_ignore_the_previous_result(shared: Tasks) -> None:
    add = shared.add
    assert (add.s(1, 1) | add.si(10, 10) | add.s(1)).delay().get(timeout=10) == 21


def test_link_list_sends_every_callback_the_result(shared: Tasks) -> None:
    first, second = shared.add.s(10), shared.echo.s("url")
    first_result, second_result = first.freeze(), second.freeze()
    shared.add.apply_async((1, 2), link=[first, second])
    assert first_result.get(timeout=10) == 13
    assert second_result.get(timeout=10) == [[3, "url"], {}]


def test_an_error_stops_the_chain_marks_the_rest_and_calls_link_error(shared: Tasks) -> None:
    add = shared.add
    errback = shared.count.si("e", "errback")
    workflow = add.s(1, 1) | shared.fail.s() | add.s(1) | add.s(2)
    workflow.link_error(errback)
    result = workflow.delay()
    with pytest.raises(Boom, match=r"failed with \(2,\)"):
        result.get(timeout=10)
    assert result.state == states.FAILURE
    record = shared.app.backend.get(result.id)
    assert record is not None and record.meta["not_run"] is True
    assert record.meta["failed"] == result.parent.parent.id
    assert result.parent.failed() and result.parent.parent.parent.get() == 2
    assert wait_until(lambda: shared.runs("errback") >= 1, timeout=10)


def test_the_rest_is_failed_before_the_failure_is_visible(app: Conveyor) -> None:
    """Whoever sees the failing step's FAILURE sees the rest failed too, and the other way
    round: `get()` follows a failed parent at once, or raises from the last step's own
    not-run mark, and either way the chain's states read FAILURE afterwards."""
    tasks = register(app)
    workflow = tasks.add.s(1, 1) | tasks.fail.s() | tasks.add.s(1)
    last = workflow.freeze()
    failing_id = last.parent.id
    seen_when_failure_stored: list[str] = []
    backend, store_many, store = app.backend, app.backend.store_many, app.backend.store

    def observe(records: list[ResultRecord]) -> None:
        """When the failure is stored: the rest's state, stored before or in the same
        batch (which the memory backend stores atomically)."""
        if any(r.task_id == failing_id and r.state == states.FAILURE for r in records):
            rest = next((r for r in records if r.task_id == last.id), backend.get(last.id))
            seen_when_failure_stored.append(states.UNKNOWN if rest is None else rest.state)

    def observing_store_many(records: Any, *args: Any, **kwargs: Any) -> Any:
        records = list(records)
        observe(records)
        return store_many(records, *args, **kwargs)

    def observing_store(record: ResultRecord, *args: Any, **kwargs: Any) -> Any:
        observe([record])
        return store(record, *args, **kwargs)

    backend.store_many, backend.store = observing_store_many, observing_store  # type: ignore[method-assign]
    worker = Worker(app, concurrency=1, shutdown_timeout=5.0)
    worker.start()
    try:
        result = workflow.delay()
        with pytest.raises(Boom):
            result.get(timeout=10)
    finally:
        worker.stop()
    assert seen_when_failure_stored == [states.FAILURE]


def test_chain_in_chain(shared: Tasks) -> None:
    add = shared.add
    inner = add.s(10) | add.s(100)
    assert chain(add.s(1, 1), inner, add.s(1000)).delay().get(timeout=10) == 1112


def test_group_in_chain_is_an_implicit_chord(shared: Tasks) -> None:
    add = shared.add
    result = (add.s(1, 1) | group(add.s(10), add.s(20), shared.mul.s(3)) | shared.tsum.s()).delay()
    assert result.get(timeout=10) == 12 + 22 + 6
    header = result.parent
    assert isinstance(header, GroupResult) and header.get(timeout=5) == [12, 22, 6]
    assert header.parent.get(timeout=5) == 2


def test_chain_ending_in_a_group_returns_the_group_result(shared: Tasks) -> None:
    add = shared.add
    result = (add.s(1, 1) | group(add.s(1), add.s(2))).delay()
    assert isinstance(result, GroupResult)
    assert result.get(timeout=10) == [3, 4]


def test_children_are_the_tasks_sent_while_running_and_the_callbacks(
    shared_app: Conveyor, shared: Tasks
) -> None:
    @shared_app.task
    def spawn() -> list[str]:
        return [shared.add.delay(1, 1).id, shared.add.delay(2, 2).id]

    callback = shared.echo.s()
    callback_result = callback.freeze()
    result = spawn.apply_async(link=callback)
    sent = result.get(timeout=10)
    assert [child.id for child in result.children] == [*sent, callback_result.id]
    assert [child.get(timeout=10) for child in result.children[:2]] == [2, 4]
    assert callback_result.get(timeout=10) == [[sent], {}]  # sent once the result is stored
    assert all(child.parent.id == result.id for child in result.children)


def test_a_step_that_cannot_take_the_result_fails_the_rest(shared: Tasks) -> None:
    """add(2, 1, 2) cannot be called: the chain's result fails with the TypeError instead
    of waiting for ever."""
    result = (shared.add.s(1, 1) | shared.add.s(1, 2) | shared.add.s(3)).delay()
    with pytest.raises(TypeError, match="add"):
        result.get(timeout=10)
    assert result.parent.failed() and result.parent.parent.get(timeout=1) == 2


def test_a_revoked_step_stops_the_chain(shared: Tasks) -> None:
    workflow = shared.add.s(1, 1) | shared.add.s(1) | shared.add.s(1)
    last = workflow.freeze()
    middle = last.parent
    middle.revoke()
    workflow.delay()
    with pytest.raises(TaskRevokedError):
        last.get(timeout=10)
    # Stored for the last step itself (get() above also reads the parents' states).
    assert wait_until(lambda: shared.app.backend.get(last.id) is not None, timeout=10)
    assert last.failed() and isinstance(last.result, TaskRevokedError)
    assert last.parent.parent.get(timeout=1) == 2
