"""The shared background waiter behind `AsyncResult.then`: one thread per app.

It reads every watched id in one `get_many` per round, pacing rounds with a short backoff
that resets when a new result is watched, so no caller blocks and no thread is spent per
result.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.app.result import AsyncResult
    from conveyor.backends.base import ResultBackend

log = logging.getLogger("conveyor.waiter")
Callback = Callable[["AsyncResult"], Any]


class Waiter:
    def __init__(
        self,
        backend: Callable[[], ResultBackend],
        initial: float = 0.02,
        maximum: float = 0.5,
    ) -> None:
        self._backend = backend
        self._initial, self._maximum = initial, maximum
        self._watched: dict[str, tuple[AsyncResult, list[Callback]]] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._added = False

    def add(self, result: AsyncResult, callback: Callback) -> None:
        with self._cond:
            entry = self._watched.setdefault(result.id, (result, []))
            entry[1].append(callback)
            self._added = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="conveyor-waiter", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        """Stop the thread and drop what it watched; a later `add` starts a new one."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopped = True
            self._cond.notify()
        if thread is not None:
            thread.join(5)
        with self._cond:
            self._watched.clear()
            self._stopped = False

    def _run(self) -> None:
        delay = self._initial
        while True:
            with self._cond:
                while not self._watched and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                ids = list(self._watched)
            try:
                records = self._backend().get_many(ids)
            except Exception:
                log.exception("reading results for then() callbacks failed; retrying")
                records = {}
            fired = False
            for task_id, record in records.items():
                if record is None or not record.ready:
                    continue
                with self._cond:
                    result, callbacks = self._watched.pop(task_id)
                result._accept(record)
                fired = True
                for callback in callbacks:
                    try:
                        callback(result)
                    except Exception:
                        log.exception("then() callback for task %s raised", task_id)
            delay = self._initial if fired else min(delay * 2, self._maximum)
            with self._cond:
                if self._cond.wait_for(lambda: self._added or self._stopped, delay):
                    delay = self._initial
                self._added = False
