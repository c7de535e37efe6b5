"""Celery's AsyncResult API that reads what is stored: str(), maybe_throw, collect,
as_tuple, date_done, get(callback=, follow_parents=)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from conveyor import AsyncResult, Conveyor
from conveyor.backends.base import ResultRecord, now
from conveyor.backends.errors import describe_exception
from conveyor.worker.worker import Worker


def _store(app: Conveyor, task_id: str, state: str, result: Any = None, **meta: Any) -> None:
    app.backend.store(ResultRecord(task_id, state, result=result, date_done=now(), meta=meta))


def test_str_is_the_id_and_repr_says_what(app: Conveyor) -> None:
    result = AsyncResult("abc", app=app)
    assert str(result) == "abc" and f"{result}" == "abc"
    assert repr(result) == "<AsyncResult: abc>"


def test_maybe_throw_and_callback(app: Conveyor) -> None:
    _store(app, "ok", "SUCCESS", 7)
    app.backend.store(
        ResultRecord("bad", "FAILURE", result=describe_exception(KeyError("k")), date_done=now())
    )
    seen: list[tuple[str, Any]] = []
    AsyncResult("ok", app=app).maybe_throw(callback=lambda *a: seen.append(a))
    assert seen == [("ok", 7)]
    with pytest.raises(KeyError):
        AsyncResult("bad", app=app).maybe_throw()
    AsyncResult("bad", app=app).maybe_throw(propagate=False)
    AsyncResult("unknown", app=app).maybe_throw()  # not ready: nothing to throw
    assert AsyncResult("ok", app=app).get(timeout=1, callback=lambda *a: seen.append(a)) == 7
    assert seen[-1] == ("ok", 7)


def test_date_done_is_an_aware_datetime(app: Conveyor) -> None:
    before = datetime.now(timezone.utc)
    _store(app, "done", "SUCCESS", 1)
    done = AsyncResult("done", app=app).date_done
    assert done is not None and done.tzinfo is not None
    assert abs((done - before).total_seconds()) < 60
    assert AsyncResult("nobody", app=app).date_done is None


def test_extended_fields_read_from_the_record(app: Conveyor) -> None:
    _store(
        app, "x", "SUCCESS", 1, name="t.add", args=[1], kwargs={}, worker="w1", retries=2, queue="q"
    )
    result = AsyncResult("x", app=app)
    assert (result.name, result.args, result.kwargs) == ("t.add", [1], {})
    assert (result.worker, result.retries, result.queue) == ("w1", 2, "q")
    _store(app, "y", "SUCCESS", 1)
    assert AsyncResult("y", app=app).name is None


def test_as_tuple_and_collect_through_a_chain(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = (add.s(1, 2) | add.s(10)).apply_async()
    start_worker()
    assert result.get(timeout=10) == 13
    parent = result.parent
    assert parent is not None
    assert result.as_tuple() == ((result.id, ((parent.id, None), None)), None)
    assert [(r.id, v) for r, v in parent.collect(timeout=10)] == [(parent.id, 3), (result.id, 13)]


def test_get_follows_a_failed_parent(app: Conveyor, start_worker: Callable[..., Worker]) -> None:
    @app.task
    def boom() -> None:
        raise ValueError("parent failed")

    @app.task
    def after(value: Any) -> str:
        return "never"

    result = (boom.s() | after.s()).apply_async()
    start_worker()
    parent = result.parent
    assert parent is not None
    with pytest.raises(ValueError, match="parent failed"):
        parent.get(timeout=10)
    with pytest.raises(ValueError, match="parent failed"):
        result.get(timeout=0.5)  # the parent's error, at once, not the child's timeout
