"""Eager mode: apply(), task_always_eager and task_eager_propagates."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Conveyor, Task, chord, group, states
from conveyor.app.exceptions import Ignore, MaxRetriesExceededError
from conveyor.result import AsyncResult, EagerResult


def test_apply_runs_here_and_returns_an_eager_result(app: Conveyor) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.apply((2, 3))
    assert isinstance(result, EagerResult) and isinstance(result, AsyncResult)
    assert result.get() == 5 and result.result == 5
    assert result.state == states.SUCCESS and result.successful() and result.ready()
    assert str(result) == result.id
    assert result.name == add.name and result.args == [2, 3]
    assert result.date_done is not None
    assert app.transport.size("default") == 0
    assert app.backend.get(result.id) is None  # nothing stored unless asked


def test_hooks_run_in_order_with_a_request(app: Conveyor) -> None:
    seen: list[Any] = []

    class Tracked(Task):
        def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
            seen.append(("before_start", task_id, args))

        def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            seen.append(("on_success", retval))

        def after_return(self, status: str, retval: Any, *rest: Any) -> None:
            seen.append(("after_return", status))

    @app.task(bind=True, base=Tracked)
    def who(self: Task) -> tuple[str | None, bool]:
        seen.append(("run", self.request.id))
        return self.request.id, self.request.is_eager

    result = who.apply(task_id="fixed-id")
    assert result.get() == ("fixed-id", True)
    assert seen == [
        ("before_start", "fixed-id", ()),
        ("run", "fixed-id"),
        ("on_success", ("fixed-id", True)),
        ("after_return", states.SUCCESS),
    ]


def test_failure_is_kept_or_propagated(app: Conveyor) -> None:
    @app.task
    def boom() -> None:
        raise KeyError("missing")

    result = boom.apply()
    assert result.failed() and result.state == states.FAILURE
    assert isinstance(result.result, KeyError)
    assert "KeyError" in (result.traceback or "")
    with pytest.raises(KeyError):
        result.get()
    assert isinstance(result.get(propagate=False), KeyError)
    with pytest.raises(KeyError):
        boom.apply(throw=True)
    app.conf.task_eager_propagates = True
    with pytest.raises(KeyError):
        boom.apply()


def test_always_eager_runs_delay_in_process(app: Conveyor) -> None:
    app.conf.task_always_eager = True

    @app.task
    def double(x: int) -> int:
        return 2 * x

    result = double.delay(21)
    assert isinstance(result, EagerResult)
    assert result.get() == 42
    assert app.transport.size("default") == 0
    with pytest.raises(TypeError, match="missing"):
        double.delay()


def test_old_uppercase_always_eager(app: Conveyor) -> None:
    app.config_from_object(
        {"CELERY_ALWAYS_EAGER": True, "CELERY_EAGER_PROPAGATES_EXCEPTIONS": True}
    )

    @app.task
    def fail() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        fail.delay()
    assert app.transport.size("default") == 0


def test_eager_retry_reruns_until_max_retries(app: Conveyor) -> None:
    attempts: list[int] = []

    @app.task(bind=True, max_retries=2)
    def flaky(self: Task, fail_until: int) -> int:
        attempts.append(self.request.retries)
        if self.request.retries < fail_until:
            raise self.retry(countdown=60)
        return self.request.retries

    assert flaky.apply((2,)).get() == 2
    assert attempts == [0, 1, 2]
    attempts.clear()
    result = flaky.apply((5,))
    assert attempts == [0, 1, 2]
    assert isinstance(result.result, MaxRetriesExceededError)
    assert app.transport.size("default") == 0


def test_ignore_and_store_eager_result(app: Conveyor) -> None:
    @app.task
    def skip() -> None:
        raise Ignore()

    assert skip.apply().state == states.IGNORED
    app.conf.task_store_eager_result = True

    @app.task
    def stored() -> str:
        return "kept"

    result = stored.apply()
    record = app.backend.get(result.id)
    assert record is not None and record.state == states.SUCCESS and record.result == "kept"


def test_links_run_eagerly(app: Conveyor) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    got: list[int] = []

    @app.task
    def keep(value: int) -> None:
        got.append(value)

    add.apply((1, 2), link=keep.s())
    assert got == [3]


def test_always_eager_runs_signatures(app: Conveyor) -> None:
    app.conf.task_always_eager = True

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.s(1, 2).delay()
    assert isinstance(result, EagerResult) and result.get(timeout=1) == 3
    assert add.s(1).apply_async((2,)).get(timeout=1) == 3
    assert app.transport.size("default") == 0
    with pytest.raises(TypeError, match="missing"):
        add.s(1).delay()


def test_always_eager_chains_and_handles_made_from_ids(app: Conveyor) -> None:
    app.conf.task_always_eager = True

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def fail(value: int) -> None:
        raise ValueError(f"bad {value}")

    chained = (add.s(1, 2) | add.s(10) | add.s(100)).delay()
    assert chained.get(timeout=1) == 113
    assert chained.parent is not None and chained.parent.get(timeout=1) == 13
    assert app.AsyncResult(chained.id).get(timeout=1) == 113
    broken = (add.s(1, 2) | fail.s()).delay()
    with pytest.raises(ValueError, match="bad 3"):
        broken.get(timeout=1)
    assert app.transport.size("default") == 0
    assert app.backend.get(chained.id) is None  # kept in memory, not stored


def test_always_eager_groups_and_chords(app: Conveyor) -> None:
    app.conf.task_always_eager = True

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def total(values: list[int]) -> int:
        return sum(values)

    assert group(add.s(1, 1), add.s(2, 2)).delay().get(timeout=1) == [2, 4]
    joined = chord([add.s(1, 1), add.s(2, 2)])(total.s())
    assert joined.get(timeout=1) == 6
    assert app.AsyncResult(joined.id).get(timeout=1) == 6
    assert (add.s(1, 1) | group(add.s(1), add.s(2)) | total.s()).delay().get(timeout=1) == 7
    assert app.transport.size("default") == 0
