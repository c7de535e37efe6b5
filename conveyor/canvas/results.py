"""ResultSet and GroupResult: handles on many tasks' results at once.

A GroupResult is saved in the result backend as one record under `group_key(id)` holding
the member ids in order (a chord's record adds its body), so `GroupResult.restore(id)`
works from any process. Waiting on a set reads its members in order, each with what is
left of the overall timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from conveyor.app import eager_records, states
from conveyor.app.exceptions import TimeoutError
from conveyor.app.result import AsyncResult
from conveyor.backends.base import ResultRecord, now

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor

GROUP_PREFIX = "conveyor.group:"


def group_key(group_id: str) -> str:
    """The backend record id under which a group (or a chord's join) is saved."""
    return GROUP_PREFIX + group_id


def save_group(
    app: Conveyor, group_id: str, ids: list[str], extra: dict[str, Any] | None = None
) -> None:
    """Store the group's member ids (and, for a chord, its body) as one ready record."""
    result = {"results": ids, **(extra or {})}
    app.backend.store(
        ResultRecord(group_key(group_id), states.SUCCESS, result=result, date_done=now())
    )


def load_group(app: Conveyor, group_id: str) -> dict[str, Any] | None:
    """The saved group record's value, or None if no such group was saved (or it expired)."""
    record = app.backend.get(group_key(group_id))
    if record is None or not isinstance(record.result, dict):
        return None
    return record.result


def earliest(result: Any) -> Any:
    """The first result of a workflow's result, following the `parent`s known here (no
    backend read): where a workflow sent after another one is hooked on."""
    while True:
        parent = result._parent if isinstance(result, AsyncResult) else result.parent
        if parent is None:
            return result
        result = parent


class ResultSet:
    """Results of several tasks, read and waited on together, in order."""

    def __init__(self, results: Iterable[AsyncResult], app: Conveyor | None = None) -> None:
        self.results: list[AsyncResult] = list(results)
        if app is None:
            app = self.results[0].app if self.results else None
        if app is None:
            from conveyor.app.base import default_app

            app = default_app()
        self.app = app

    def __iter__(self) -> Iterator[AsyncResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> AsyncResult:
        return self.results[index]

    def add(self, result: AsyncResult) -> None:
        if result not in self.results:
            self.results.append(result)

    def _records(self) -> list[ResultRecord | None]:
        """Each member's record: an eager run's outcome (app/eager_records.py), else the
        backend's, read in one `get_many`."""
        kept = {}
        for result in self.results:
            outcome = eager_records.find(self.app, result.id)
            if outcome is not None:
                kept[result.id] = outcome._record()
        missing = [r.id for r in self.results if r.id not in kept]
        found = self.app.backend.get_many(missing) if missing else {}
        return [kept.get(r.id) or found.get(r.id) for r in self.results]

    def ready(self) -> bool:
        """Whether every task is ready (one `get_many`)."""
        return all(r is not None and r.ready for r in self._records())

    def successful(self) -> bool:
        return all(r is not None and r.state == states.SUCCESS for r in self._records())

    def failed(self) -> bool:
        """Whether any task failed."""
        return any(r is not None and r.state == states.FAILURE for r in self._records())

    def waiting(self) -> bool:
        return not self.ready()

    def completed_count(self) -> int:
        """How many tasks succeeded."""
        return sum(1 for r in self._records() if r is not None and r.state == states.SUCCESS)

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        callback: Callable[[str, Any], None] | None = None,
        disable_sync_subtasks: bool = True,
    ) -> list[Any]:
        """The return values in order; the first failure raises when `propagate`.

        `timeout` bounds the whole wait; `callback(task_id, value)` replaces collecting.
        """
        del interval
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{self!r} not ready after {timeout} s")
            value = result.get(
                timeout=remaining,
                propagate=propagate,
                disable_sync_subtasks=disable_sync_subtasks,
            )
            if callback is not None:
                callback(result.id, value)
            else:
                values.append(value)
        return values

    join = get

    def revoke(self, terminate: bool = False) -> None:
        for result in self.results:
            result.revoke(terminate=terminate)

    def forget(self) -> None:
        for result in self.results:
            result.forget()

    def then(
        self,
        callback: Callable[[ResultSet], Any],
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> ResultSet:
        """Call `callback(self)` once every task is ready (`on_error(exc)` instead for the
        first failure, when given), from the app's waiter thread; nothing blocks."""
        pending = {r.id for r in self.results}
        if not pending:
            callback(self)
            return self
        done: list[bool] = [False]

        def one_ready(result: AsyncResult) -> None:
            pending.discard(result.id)
            if done[0]:
                return
            if on_error is not None and result.failed():
                done[0] = True
                on_error(result.result)
            elif not pending:
                done[0] = True
                callback(self)

        for result in self.results:
            result.then(one_ready)
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: [{', '.join(r.id for r in self.results)}]>"


class GroupResult(ResultSet):
    """The results of a group, under the group's id; `save()` makes it restorable."""

    def __init__(
        self,
        id: str,
        results: Iterable[AsyncResult] = (),
        app: Conveyor | None = None,
        parent: Any = None,
    ) -> None:
        super().__init__(results, app)
        self.id = id
        self.parent = parent

    def save(self) -> GroupResult:
        save_group(self.app, self.id, [r.id for r in self.results])
        return self

    def delete(self) -> None:
        self.app.backend.forget(group_key(self.id))

    @classmethod
    def restore(cls, id: str, app: Conveyor | None = None) -> GroupResult | None:
        """The group saved under `id`, or None when no such group is stored."""
        if app is None:
            from conveyor.app.base import default_app

            app = default_app()
        saved = load_group(app, id)
        if saved is None:
            return None
        return cls(id, [AsyncResult(task_id, app=app) for task_id in saved["results"]], app)

    @property
    def children(self) -> list[AsyncResult]:
        return self.results

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return other.id == self.id and other.results == self.results
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)
