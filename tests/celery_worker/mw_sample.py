"""A user middleware loaded by its "module:attr" path (tests of worker_middleware)."""

from __future__ import annotations

from typing import Any

from conveyor.worker.middleware import Middleware

CALLS: list[tuple[str, Any]] = []


class Audit(Middleware):
    def before_task(self, task: Any, request: Any) -> None:
        CALLS.append(("before", request.id))

    def after_task(self, task: Any, request: Any, outcome: Any) -> None:
        CALLS.append(("after", outcome.state))
