"""Celery's `typing`: a call whose arguments do not fit the task's signature fails at the
call (``add.delay(1)`` raises TypeError) instead of on a worker, later and far away.

The signature is read once per task class and kept, so the check costs one `bind` per
call.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from conveyor.app.task import Task

_signatures: WeakKeyDictionary[type, inspect.Signature | None] = WeakKeyDictionary()


def _signature(task: Task) -> inspect.Signature | None:
    cls = type(task)
    if cls not in _signatures:
        try:
            _signatures[cls] = inspect.signature(task.run)
        except (TypeError, ValueError):  # a builtin or C function: nothing to check
            _signatures[cls] = None
    return _signatures[cls]


def check_arguments(task: Task, args: Any, kwargs: Any) -> None:
    """TypeError naming the task when `args`/`kwargs` do not fit its `run`."""
    if not task.typing:
        return
    signature = _signature(task)
    if signature is None:
        return
    try:
        signature.bind(*(args or ()), **(kwargs or {}))
    except TypeError as exc:
        raise TypeError(f"task {task.name!r} called with the wrong arguments: {exc}") from None
