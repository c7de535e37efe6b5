"""`self.request`: what a running task knows about its own invocation.

Each thread has its own stack of contexts, so one task object can run in many pool threads
at once; `current()` is how a task that sends subtasks records itself as their parent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from conveyor.utils import log


@dataclass
class Context:
    id: str | None = None
    task: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    eta: str | None = None
    expires: str | None = None
    hostname: str | None = None
    delivery_info: dict[str, Any] = field(default_factory=dict)
    delivery_count: int = 0
    root_id: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    errbacks: list[dict[str, Any]] = field(default_factory=list)
    #: Ids of the tasks sent while this one runs (its result's `children`).
    children: list[str] = field(default_factory=list)
    headers: dict[str, Any] = field(default_factory=dict)
    ignore_result: bool = False
    called_directly: bool = True
    is_eager: bool = False


_local = threading.local()
_DIRECT = Context()


def _stack() -> list[Context]:
    stack: list[Context] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def current() -> Context | None:
    """The context of the task running on this thread, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def current_or_direct() -> Context:
    return current() or _DIRECT


@contextmanager
def running(context: Context) -> Iterator[Context]:
    stack = _stack()
    stack.append(context)
    try:
        yield context
    finally:
        stack.pop()


def running_task() -> tuple[str, str] | None:
    """(name, id) of the task running on this thread, else None (for task log lines)."""
    running = current()
    return (running.task or "", running.id) if running and running.id else None


log.set_task_context(running_task)
