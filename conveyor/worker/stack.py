"""The middleware stack of one app's workers: the worker's own middleware in their order,
with the user's (the ``worker_middleware`` setting) in their place; see middleware.py.

Each hook list holds only the middleware that override that hook, so a no-op hook costs
nothing per task (a speed trick for the hot path, kept here where the lists are built).
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable
from typing import Any

from conveyor.app.base import Conveyor
from conveyor.core.errors import ConfigurationError
from conveyor.worker.counts import TaskCounts
from conveyor.worker.events import TaskEvents
from conveyor.worker.hooks import TaskHooks
from conveyor.worker.middleware import Middleware, overrides
from conveyor.worker.rate_limits import RateLimits
from conveyor.worker.results import Claim, Results
from conveyor.worker.retries import Retries
from conveyor.worker.signal_hooks import Signals
from conveyor.worker.time_limits import TimeLimits


def _resolve(entry: Any) -> Middleware:
    """A middleware from an instance, a class or a "module:attr" string."""
    found = entry
    if isinstance(entry, str):
        module_name, _, attribute = entry.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attribute or "Middleware")
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(
                f"worker_middleware {entry!r} cannot be loaded: {exc}"
            ) from exc
    if isinstance(found, type) and issubclass(found, Middleware):
        found = found()
    if not isinstance(found, Middleware):
        raise ConfigurationError(
            f"worker_middleware entry {entry!r} is not a conveyor.worker.middleware.Middleware"
        )
    return found


def _bound(middleware: list[Middleware], hook: str) -> list[Callable[..., Any]]:
    return [getattr(m, hook) for m in middleware if overrides(m, hook)]


class Stack:
    """The ordered middleware, and for each hook the bound hooks of those that have it
    (bound once here: the hot path makes no attribute lookups for them)."""

    def __init__(self, middleware: list[Middleware]) -> None:
        self.middleware = middleware
        self.starting = _bound(middleware, "worker_start")
        self.stopping = _bound(middleware[::-1], "worker_stop")
        self.submit = _bound(middleware, "before_submit")
        self.before = _bound(middleware, "before_task")
        self.skipped = _bound(middleware, "task_skipped")
        self.around = _bound(middleware, "around_task")
        self.after = _bound(middleware[::-1], "after_task")

    def find(self, kind: type[Middleware]) -> Any:
        """The stack's middleware of class `kind` (e.g. RateLimits for remote control)."""
        return next((m for m in self.middleware if isinstance(m, kind)), None)

    def counts(self) -> dict[str, int]:
        """Tasks run per name (TaskCounts)."""
        counts = self.find(TaskCounts)
        return counts.snapshot() if counts is not None else {}


def build(app: Conveyor, *, hard_enforced_outside: bool = False) -> Stack:
    users = [_resolve(entry) for entry in app.conf.worker_middleware]
    return Stack(
        [
            RateLimits(),
            TaskCounts(),
            Claim(),
            Signals(),
            TaskHooks(),
            TaskEvents(),
            *users,
            TimeLimits(hard_enforced_outside=hard_enforced_outside),
            Results(),
            Retries(),
        ]
    )


_stacks: weakref.WeakKeyDictionary[Conveyor, dict[bool, Stack]] = weakref.WeakKeyDictionary()


def stack_for(app: Conveyor, *, hard_enforced_outside: bool = False) -> Stack:
    """The app's stack, built on first use (the setting is read once)."""
    built = _stacks.setdefault(app, {})
    if hard_enforced_outside not in built:
        built[hard_enforced_outside] = build(app, hard_enforced_outside=hard_enforced_outside)
    return built[hard_enforced_outside]
