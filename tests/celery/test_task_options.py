"""Celery's task decorator options: accepted, stored, and refused when unknown or bad."""

from __future__ import annotations

import pytest

from conveyor import Conveyor, Task
from tests.celery.conftest import fetch_task


def test_celery_options_are_kept_on_the_task(app: Conveyor) -> None:
    @app.task(
        reject_on_worker_lost=True,
        store_errors_even_if_ignored=True,
        throws=(KeyError,),
        trail=False,
        lazy=False,
        compression="zlib",
        typing=False,
        expires=60,
    )
    def work() -> None: ...

    assert work.reject_on_worker_lost is True
    assert work.store_errors_even_if_ignored is True
    assert work.throws == (KeyError,)
    assert work.trail is False
    assert work.compression == "zlib"
    assert work.typing is False
    assert work.expires == 60
    assert not hasattr(work, "lazy")


def test_defaults_are_celerys(app: Conveyor) -> None:
    @app.task
    def work() -> None: ...

    assert work.typing is True
    assert work.trail is True
    assert work.reject_on_worker_lost is None
    assert work.store_errors_even_if_ignored is False
    assert work.throws == ()


def test_unknown_option_is_refused_by_name(app: Conveyor) -> None:
    with pytest.raises(TypeError, match="rate_limt"):

        @app.task(rate_limt="1/s")
        def work() -> None: ...


def test_expires_option_is_the_default_for_each_call(app: Conveyor) -> None:
    @app.task(expires=30)
    def work() -> None: ...

    work.delay()
    assert fetch_task(app).expires is not None
    work.apply_async(expires=None)
    assert fetch_task(app).expires is not None  # None means "the task's own"


def test_typing_checks_arity_at_call_time(app: Conveyor) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(TypeError, match=r"add.*missing a required argument: 'y'"):
        add.delay(1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        add.apply_async((1, 2), {"z": 3})
    with pytest.raises(TypeError, match="too many positional"):
        add.apply((1, 2, 3))
    assert app.transport.size("default") == 0
    add.delay(1, y=2)
    assert fetch_task(app).kwargs == {"y": 2}


def test_typing_for_bound_and_class_tasks(app: Conveyor) -> None:
    @app.task(bind=True)
    def bound(self: Task, x: int) -> int:
        return x

    with pytest.raises(TypeError, match="missing"):
        bound.delay()
    bound.delay(1)

    class Sum(Task):
        name = "tests.sum"

        def run(self, *numbers: int) -> int:
            return sum(numbers)

    registered = app.register_task(Sum)
    registered.delay(1, 2, 3, 4)
    assert app.transport.size("default") == 2


def test_typing_off_sends_anything(app: Conveyor) -> None:
    @app.task(typing=False)
    def loose(x: int) -> int:
        return x

    loose.delay()
    assert fetch_task(app).args == []
