"""The app and task API Celery code uses: shared_task, current_app, current_task,
register_task, app.signature, autodiscover_tasks."""

from __future__ import annotations

import sys
import uuid

import pytest

from conveyor import Conveyor, Task, current_app, current_task, shared_task
from conveyor.app.rate_limit import InvalidRateLimit
from tests.celery.conftest import fetch_task


def _fresh_app() -> Conveyor:
    name = uuid.uuid4().hex
    return Conveyor("fresh", broker=f"memory://{name}", backend=f"memory://{name}")


def test_current_app_is_the_default_app(app: Conveyor) -> None:
    assert current_app._get_current_object() is app  # type: ignore[attr-defined]
    assert current_app.conf is app.conf
    other = _fresh_app()
    try:
        assert current_app._get_current_object() is other  # type: ignore[attr-defined]
        app.set_default()
        assert current_app.main == "tests"
    finally:
        other.close()


def test_current_task_inside_and_outside(app: Conveyor) -> None:
    @app.task
    def which() -> str:
        return current_task.name

    assert not current_task
    assert which.apply().get() == which.name
    assert which() == which.name


def test_shared_task_joins_existing_and_later_apps(app: Conveyor) -> None:
    @shared_task(name="tests.shared.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    assert "tests.shared.mul" in app.tasks
    later = _fresh_app()
    try:
        assert "tests.shared.mul" in later.tasks
        mul.delay(2, 3)  # sent through the current (latest) app
        assert fetch_task(later).args == [2, 3]
        assert mul(4, 5) == 20
        assert mul.name == "tests.shared.mul"
    finally:
        later.close()


def test_shared_task_bare_decorator(app: Conveyor) -> None:
    @shared_task
    def bare() -> str:
        return "ok"

    assert bare.apply().get() == "ok"


def test_register_class_based_task(app: Conveyor) -> None:
    class Resize(Task):
        def run(self, width: int) -> int:
            return width // 2

    task = app.register_task(Resize())
    assert task.name == f"{__name__}.Resize"
    assert app.tasks[task.name] is task and task.app is app
    assert task.apply((10,)).get() == 5
    task.delay(8)
    assert fetch_task(app).task == task.name

    class Bad(Task):
        rate_limit = "fast"

    with pytest.raises(InvalidRateLimit, match="'fast'"):
        app.register_task(Bad)


def test_app_signature(app: Conveyor) -> None:
    sig = app.signature("remote.task", (1,), {"k": 2}, queue="far")
    sig.delay()
    body = fetch_task(app, "far")
    assert (body.task, body.args, body.kwargs) == ("remote.task", [1], {"k": 2})
    assert app.signature(sig.to_dict()).task == "remote.task"


def test_autodiscover_tasks_lazy_and_forced(app: Conveyor) -> None:
    for name in list(sys.modules):
        if name.startswith("tests.celery.sample_project.pkg"):
            del sys.modules[name]
    packages = ["tests.celery.sample_project.pkg_a", "tests.celery.sample_project.pkg_b"]
    app.autodiscover_tasks(lambda: packages)
    assert "tests.celery.sample_project.pkg_a.tasks" not in sys.modules
    app.import_task_modules()
    assert "sample.ping" in app.tasks  # pkg_b has no tasks module: skipped
    app.autodiscover_tasks(["tests.celery.sample_project.pkg_a"], force=True)


def test_autodiscover_does_not_hide_a_broken_tasks_module(app: Conveyor) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"tests\.celery\.no_such_package"):
        app.autodiscover_tasks(["json", "tests.celery.no_such_package.sub"], force=True)
