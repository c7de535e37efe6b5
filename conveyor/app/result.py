"""AsyncResult: a handle on one task's state and return value in the result backend."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from conveyor.app import context, eager_records, states
from conveyor.app.exceptions import (
    ResultIgnored,
    SyncSubtaskError,
    TaskRevokedError,
    TimeoutError,
)
from conveyor.app.result_extras import ResultExtras
from conveyor.backends.base import ResultRecord, ResultTimeout
from conveyor.core.errors import PublishFailed, PublishTimeout
from conveyor.core.pipeline import Ticket

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor


def record_body(record: ResultRecord) -> dict[str, Any]:
    """The dict `on_message` callbacks receive (Celery's shape: status, result, ...)."""
    return {
        "task_id": record.task_id,
        "status": record.state,
        "result": record.result,
        "traceback": record.traceback,
        "children": record.children,
        "date_done": record.date_done,
    }


class AsyncResult(ResultExtras):
    """The result of task `id`. A ready record is read once and then kept."""

    def __init__(self, id: str, app: Conveyor | None = None) -> None:
        if app is None:
            from conveyor.app.base import default_app

            app = default_app()
        self.id = id
        self.app = app
        #: Sent with ignore_result=True: no result will be stored, so get() raises at once.
        self.ignored = False
        self._ready_record: ResultRecord | None = None
        self._parent: AsyncResult | None = None
        #: The confirm of a pipelined publish (core/pipeline.py), until get() has seen it.
        self.publish_ticket: Ticket | None = None

    @property
    def task_id(self) -> str:
        return self.id

    def _record(self) -> ResultRecord | None:
        if self._ready_record is not None:
            return self._ready_record
        kept = eager_records.find(self.app, self.id)
        record = kept._record() if kept is not None else self.app.backend.get(self.id)
        if record is not None and record.ready:
            self._ready_record = record
        return record

    def _accept(self, record: ResultRecord) -> ResultRecord:
        if record.ready:
            self._ready_record = record
        return record

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The stored state; UNKNOWN when the backend has no record of this id."""
        record = self._record()
        return states.UNKNOWN if record is None else record.state

    status = state

    def exists(self) -> bool:
        """Whether the backend knows this id (a sent task is PENDING, not unknown)."""
        return self._record() is not None

    def ready(self) -> bool:
        record = self._record()
        return record is not None and record.ready

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    @property
    def result(self) -> Any:
        """The return value, the exception of a failure, or the meta of a custom state."""
        record = self._record()
        if record is None:
            return None
        return self._value(record)

    info = result

    @property
    def traceback(self) -> str | None:
        record = self._record()
        return None if record is None else record.traceback

    @property
    def parent(self) -> Any:
        """The result of the task before this one in its workflow (set when the workflow
        was built here, else read from the record's parent id); None for a first task."""
        if self._parent is None:
            record = self._record()
            if record is not None and record.parent_id:
                self._parent = AsyncResult(record.parent_id, app=self.app)
        return self._parent

    @parent.setter
    def parent(self, value: Any) -> None:
        self._parent = value

    @property
    def children(self) -> list[AsyncResult]:
        """Results of the tasks this one started, as stored with its result."""
        record = self._record()
        return [] if record is None else [AsyncResult(c, app=self.app) for c in record.children]

    def _value(self, record: ResultRecord) -> Any:
        kept = eager_records.find(self.app, self.id)
        if kept is not None:  # an eager run's own value (its exception, not a rebuilt copy)
            return kept._value(record)
        if record.state == states.FAILURE:
            return self.app.rebuild_exception(record)
        if record.state == states.REVOKED:
            return TaskRevokedError(f"task {self.id} was revoked")
        return record.result

    # -- waiting -----------------------------------------------------------------------

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        disable_sync_subtasks: bool = True,
        follow_parents: bool = True,
        callback: Callable[[str, Any], None] | None = None,
    ) -> Any:
        """Wait until ready and return the value; a failure re-raises its exception.

        `on_message(body)` is called for every state change (PROGRESS, RETRY, ...).
        `interval` is accepted for Celery compatibility: each backend paces its own wait.
        With `follow_parents` (and `propagate`) a failed parent's error is raised first;
        `callback(task_id, value)` receives the value.
        Inside a running task this raises SyncSubtaskError unless `disable_sync_subtasks`
        is False (a worker slot waiting on another task can deadlock the pool).
        """
        del interval
        if self.ignored and self._ready_record is None:
            raise ResultIgnored(
                f"task {self.id} was sent with ignore_result=True: no result will be stored"
            )
        if disable_sync_subtasks and self._ready_record is None:
            running = context.current()
            if running is not None and not (running.called_directly or running.is_eager):
                raise SyncSubtaskError(
                    f"get() on {self.id} inside task {running.task}[{running.id}]: use a "
                    "chain or chord, or pass disable_sync_subtasks=False"
                )
        parent = getattr(self, "parent", None) if follow_parents and propagate else None
        seen = {self.id}
        while parent is not None and getattr(parent, "id", None) not in seen:
            seen.add(parent.id)
            throw = getattr(parent, "maybe_throw", None)  # a GroupResult parent has none
            if throw is not None:
                throw()
            parent = getattr(parent, "parent", None)
        if self.publish_ticket is not None and self._ready_record is None:
            try:
                timeout = self._await_publish(timeout)
            except PublishFailed as exc:
                if propagate:
                    raise
                return exc
        if self._ready_record is None:
            kept = eager_records.find(self.app, self.id)
            self._ready_record = None if kept is None else kept._record()
        if self._ready_record is None:
            report = None if on_message is None else lambda r: on_message(record_body(r))
            try:
                self._accept(self.app.backend.wait(self.id, timeout, report))
            except ResultTimeout:
                raise TimeoutError(f"task {self.id} not ready after {timeout} s") from None
        record = self._ready_record
        assert record is not None
        value = self._value(record)
        if propagate and record.state in states.PROPAGATE_STATES:
            raise value
        if callback is not None:
            callback(self.id, value)
        return value

    wait = get

    def _await_publish(self, timeout: float | None) -> float | None:
        """Wait for the broker's confirm of this task's pipelined publish; return what is
        left of `timeout`. A publish finally refused raises PublishFailed (the task never
        runs); one not confirmed in time raises TimeoutError."""
        ticket = self.publish_ticket
        assert ticket is not None
        started = time.monotonic()
        try:
            self.app.producer.pipeline.wait([ticket], timeout)
        except PublishTimeout:
            raise TimeoutError(
                f"task {self.id}: its publish was not confirmed after {timeout} s"
            ) from None
        if ticket.error is not None:  # reported before (a flush, another get): raise it too
            raise ticket.error
        self.publish_ticket = None
        return None if timeout is None else max(0.0, timeout - (time.monotonic() - started))

    def then(
        self,
        callback: Callable[[AsyncResult], Any],
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> AsyncResult:
        """Call `callback(self)` once the task is ready, from the app's shared waiter thread;
        with `on_error`, a failed task calls ``on_error(exception)`` instead."""
        if on_error is None:
            self.app.waiter.add(self, callback)
        else:
            self.app.waiter.add(self, lambda r: on_error(r.result) if r.failed() else callback(r))
        return self

    # -- control -----------------------------------------------------------------------

    def revoke(self, terminate: bool = False) -> None:
        self.app.control.revoke(self.id, terminate=terminate)

    def forget(self) -> None:
        self._ready_record = None
        self.app.backend.forget(self.id)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        return other == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"
