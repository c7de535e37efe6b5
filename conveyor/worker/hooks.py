"""The task's own hooks as middleware: on_success/on_failure/on_retry, the workflow's
next steps (conveyor.canvas.advance: callbacks, errbacks, chord joins), after_return, and
the outcome's log line.

They run after the outcome is stored, so a hook that reads the result sees the final
state. A hook that fails is logged; it never changes the outcome.
"""

from __future__ import annotations

import logging
from typing import Any

from conveyor.app import states
from conveyor.app.context import Context
from conveyor.app.task import Task
from conveyor.canvas.advance import advance
from conveyor.worker.middleware import Middleware, Outcome, Request

log = logging.getLogger("conveyor.worker")


def _hook(task: Task, name: str, *args: Any) -> None:
    try:
        getattr(task, name)(*args)
    except Exception:
        log.exception("%s.%s hook raised", task.name, name)


class TaskHooks(Middleware):
    def before_task(self, task: Task, request: Context) -> str | None:
        _hook(task, "before_start", request.id, request.args, request.kwargs)
        return None

    def task_skipped(self, task: Task, request: Context, state: str) -> None:
        # A crash may have come after the store and before the workflow moved on; a
        # revoked task's workflow stops here.
        message = request.message if isinstance(request, Request) else None
        if message is not None and (request.delivery_count > 1 or state == states.REVOKED):
            advance(task.app, message, state, request)

    def after_task(self, task: Task, request: Context, outcome: Outcome) -> None:
        state, args, kwargs = outcome.state, request.args, request.kwargs
        retval, einfo = outcome.retval, outcome.einfo
        message = request.message if isinstance(request, Request) else None
        if state == states.SUCCESS:
            log.info("task %s[%s] succeeded", task.name, request.id)
            _hook(task, "on_success", retval, request.id, args, kwargs)
            if message is not None:
                advance(task.app, message, state, request, retval)
        elif state == states.FAILURE:
            # An error the task declares it raises (`throws`) is an expected outcome.
            level = logging.INFO if isinstance(retval, task.throws) else logging.ERROR
            log.log(level, "task %s[%s] failed: %r", task.name, request.id, retval)
            _hook(task, "on_failure", retval, request.id, args, kwargs, einfo)
            if message is not None:
                traceback = einfo.traceback if einfo else None
                rest_stored = outcome.rest_stored
                advance(task.app, message, state, request, retval, traceback, rest_stored)
        elif state == states.RETRY and einfo is not None:
            when = getattr(retval, "when", 0.0)
            log.info(
                "task %s[%s] retry in %.3g s: %s", task.name, request.id, when, einfo.exception
            )
            _hook(task, "on_retry", einfo.exception, request.id, args, kwargs, einfo)
            retval = None
        elif state in (states.IGNORED, states.REJECTED):
            log.info("task %s[%s] %s: %s", task.name, request.id, state.lower(), retval)
        _hook(task, "after_return", state, retval, request.id, args, kwargs, einfo)
