"""`current_app`, `current_task` and `shared_task`, as Celery code uses them.

`current_app` stands for the default app (the one most recently created, or made so with
`app.set_default()`); `current_task` for the task running on this thread (falsy outside
one). A `shared_task` belongs to no app: it is registered with every app that exists or is
created later, and the object it returns stands for the current app's copy, so a library
of tasks works with whatever app its user builds.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor.app import context

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.task import Task

F = TypeVar("F", bound=Callable[..., Any])
_apps: weakref.WeakSet[Conveyor] = weakref.WeakSet()
_shared: list[tuple[Callable[..., Any], dict[str, Any]]] = []


class Proxy:
    """Stands for the object `resolve()` returns at each use."""

    __slots__ = ("_resolve",)

    def __init__(self, resolve: Callable[[], Any]) -> None:
        object.__setattr__(self, "_resolve", resolve)

    def _get_current_object(self) -> Any:
        return self._resolve()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resolve(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._resolve(), name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._resolve()(*args, **kwargs)

    def __bool__(self) -> bool:
        return bool(self._resolve())

    def __eq__(self, other: object) -> bool:
        return bool(self._resolve() == other)

    def __hash__(self) -> int:
        return hash(self._resolve())

    def __repr__(self) -> str:
        try:
            return repr(self._resolve())
        except RuntimeError as exc:  # no app yet
            return f"<unresolved proxy: {exc}>"


def _default_app() -> Conveyor:
    from conveyor.app.base import default_app

    return default_app()


def _running_task() -> Task | None:
    running = context.current()
    if running is None or running.task is None:
        return None
    for app in [_default_app(), *_apps]:
        task = app.tasks.get(running.task)
        if task is not None:
            return task
    return None


current_app: Conveyor = Proxy(_default_app)  # type: ignore[assignment]
current_task: Task = Proxy(_running_task)  # type: ignore[assignment]


def _register(app: Conveyor, fun: Callable[..., Any], options: dict[str, Any]) -> Task:
    name = options.get("name") or app.gen_task_name(fun)
    task = app.tasks.get(name)
    if task is None:
        task = app.task(**dict(options))(fun)
    return task


def attach(app: Conveyor) -> None:
    """Give a new app every shared task (called by `Conveyor.__init__`)."""
    _apps.add(app)
    for fun, options in _shared:
        _register(app, fun, options)


def shared_task(*args: Any, **options: Any) -> Any:
    """``@shared_task`` or ``@shared_task(bind=True, ...)``: a task of every app."""

    def create(fun: Callable[..., Any]) -> Task:
        _shared.append((fun, options))
        for app in list(_apps):
            _register(app, fun, options)
        task: Task = Proxy(lambda: _register(_default_app(), fun, options))  # type: ignore[assignment]
        return task

    if len(args) == 1 and callable(args[0]) and not options:
        return create(args[0])
    if args:
        raise TypeError("shared_task takes the function, or keyword options only")
    return create
