"""The in-memory result backend: the reference implementation of the contract, thread-safe.

All backends built from the same ``memory://name`` URL in one process share one store.
Records are kept encoded, as a networked store would hold them, so a record read back is a
copy and the size limit applies. `wait` sleeps on the store's Condition and is handed every
record written for its id, so it reports each state change, however quick.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from conveyor.backends.base import (
    BackendOptions,
    OnMessage,
    ResultBackend,
    ResultRecord,
    ResultTimeout,
    Watch,
)
from conveyor.core.inprocess import PerName
from conveyor.core.url import URL

_SWEEP_EVERY = 1.0  # seconds between sweeps of expired entries


@dataclass
class _Store:
    lock: threading.Condition = field(default_factory=threading.Condition)
    records: dict[str, tuple[bytes, bool, float | None]] = field(default_factory=dict)
    counters: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    watchers: dict[str, list[deque[bytes]]] = field(default_factory=dict)
    swept: float = field(default_factory=time.monotonic)

    def live_record(self, task_id: str, now: float) -> tuple[bytes, bool, float | None] | None:
        entry = self.records.get(task_id)
        if entry is not None and entry[2] is not None and entry[2] <= now:
            del self.records[task_id]
            return None
        return entry

    def sweep(self, now: float) -> None:
        if now - self.swept < _SWEEP_EVERY:
            return
        self.swept = now
        for task_id in [k for k, v in self.records.items() if v[2] is not None and v[2] <= now]:
            del self.records[task_id]
        for key in [k for k, v in self.counters.items() if v[1] is not None and v[1] <= now]:
            del self.counters[key]


_store_for = PerName(_Store)


class MemoryBackend(ResultBackend):
    """Results in this process's memory, shared by every backend with the same URL name."""

    networked: bool = False
    authenticates: bool = False
    crosses_processes: bool = False
    pushes: bool = True

    def __init__(self, url: URL, options: BackendOptions) -> None:
        super().__init__(url, options)
        self._store = _store_for(url)

    def _deadline(self, now: float) -> float | None:
        expires = self.options.result_expires
        return now + expires if expires else None

    def store(self, record: ResultRecord) -> bool:
        return self.store_many([record])[0]

    def store_many(self, records: Sequence[ResultRecord]) -> list[bool]:
        """Every record encoded first (an EncodeError stores nothing), then all stored
        under one lock: a reader sees the batch whole or not at all."""
        encoded = [self.encode(record) for record in records]
        store = self._store
        stored = []
        with store.lock:
            now = time.monotonic()
            store.sweep(now)
            for record, data in encoded:
                current = store.live_record(record.task_id, now)
                if current is not None and current[1]:
                    stored.append(False)
                    continue
                store.records[record.task_id] = (data, record.ready, self._deadline(now))
                for inbox in store.watchers.get(record.task_id, ()):
                    inbox.append(data)
                stored.append(True)
            store.lock.notify_all()
        return stored

    def get(self, task_id: str) -> ResultRecord | None:
        with self._store.lock:
            entry = self._store.live_record(task_id, time.monotonic())
        return None if entry is None else ResultRecord.from_bytes(entry[0])

    def wait(
        self, task_id: str, timeout: float | None, on_message: OnMessage | None = None
    ) -> ResultRecord:
        store = self._store
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = Watch(on_message)
        inbox: deque[bytes] = deque()
        with store.lock:
            entry = store.live_record(task_id, time.monotonic())
            if entry is not None:
                inbox.append(entry[0])
            store.watchers.setdefault(task_id, []).append(inbox)
        try:
            while True:
                with store.lock:
                    while not inbox:
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            raise ResultTimeout(task_id, timeout)
                        store.lock.wait(remaining)
                    pending = list(inbox)
                    inbox.clear()
                # on_message runs outside the lock: it may call back into the backend.
                for data in pending:
                    record = ResultRecord.from_bytes(data)
                    if watch.saw(record):
                        return record
        finally:
            with store.lock:
                waiting = store.watchers[task_id]
                waiting.remove(inbox)
                if not waiting:
                    del store.watchers[task_id]

    def forget(self, task_id: str) -> None:
        with self._store.lock:
            self._store.records.pop(task_id, None)

    def incr(self, key: str, amount: int = 1) -> int:
        store = self._store
        with store.lock:
            now = time.monotonic()
            value, expires = store.counters.get(key, (0, None))
            if expires is not None and expires <= now:
                value = 0
            value += amount
            store.counters[key] = (value, self._deadline(now))
            return value
