"""The parts of Celery's AsyncResult API that read what is already stored: `str()` is the
id, `maybe_throw`, `collect`, `as_tuple`, `date_done`, and, when the worker stored them
(the `result_extended` setting), `name`, `args`, `kwargs`, `worker`, `retries`, `queue`.

A mixin of AsyncResult, kept apart so the result class stays about waiting and state.
The extended fields live in the record's `meta` under these names; without them the
attributes are None, as in Celery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from conveyor.app import states

if TYPE_CHECKING:
    from conveyor.backends.base import ResultRecord

EXTENDED_FIELDS = ("name", "args", "kwargs", "worker", "retries", "queue")


class ResultExtras:
    id: str

    def _record(self) -> ResultRecord | None:
        raise NotImplementedError

    def _value(self, record: ResultRecord) -> Any:
        raise NotImplementedError

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.id

    def _extended(self, field: str) -> Any:
        record = self._record()
        return None if record is None else record.meta.get(field)

    @property
    def name(self) -> str | None:
        return self._extended("name")

    @property
    def args(self) -> list[Any] | None:
        return self._extended("args")

    @property
    def kwargs(self) -> dict[str, Any] | None:
        return self._extended("kwargs")

    @property
    def worker(self) -> str | None:
        return self._extended("worker")

    @property
    def retries(self) -> int | None:
        return self._extended("retries")

    @property
    def queue(self) -> str | None:
        return self._extended("queue")

    @property
    def date_done(self) -> datetime | None:
        """When the task became ready, as an aware UTC datetime (None before)."""
        record = self._record()
        if record is None or record.date_done is None:
            return None
        return datetime.fromtimestamp(record.date_done, timezone.utc)

    def maybe_throw(
        self, propagate: bool = True, callback: Callable[[str, Any], None] | None = None
    ) -> None:
        """Raise the task's exception if it failed (with `propagate`); pass a ready
        value to `callback(task_id, value)`. Does not wait."""
        record = self._record()
        if record is None or not record.ready:
            return
        value = self._value(record)
        if propagate and record.state in states.PROPAGATE_STATES:
            raise value
        if callback is not None:
            callback(self.id, value)

    maybe_reraise = maybe_throw

    def collect(self, intermediate: bool = False, **options: Any) -> Iterator[tuple[Any, Any]]:
        """Wait for this result and then each of its children's, depth first, yielding
        ``(result, value)`` pairs (children come from the canvas's `children`)."""
        del intermediate
        yield self, self.get(**options)
        for child in getattr(self, "children", None) or ():
            yield from child.collect(**options)

    def as_tuple(self) -> tuple[tuple[str, Any], None]:
        """Celery's serialisable form: ``((id, parent tuple or None), None)``."""
        parent = getattr(self, "parent", None)
        return (self.id, parent.as_tuple() if parent is not None else None), None
