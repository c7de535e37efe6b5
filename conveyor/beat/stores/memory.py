"""The in-memory schedule store: the reference implementation, shared per ``memory://name``
within one process (for tests and the memory broker)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from conveyor.beat.store import ScheduleStore
from conveyor.core.inprocess import PerName
from conveyor.core.url import URL


@dataclass
class _Namespaces:
    lock: threading.Lock = field(default_factory=threading.Lock)
    leases: dict[str, tuple[str, float]] = field(default_factory=dict)
    runs: dict[tuple[str, str], float] = field(default_factory=dict)


_shared: PerName[_Namespaces] = PerName(_Namespaces)


class MemoryScheduleStore(ScheduleStore):
    expires_on_caller_clock = True

    def __init__(self, url: URL, namespace: str, prefix: str = "") -> None:
        self._data = _shared(url, prefix)
        self._namespace = namespace

    def acquire(self, holder: str, ttl: float, now: float) -> bool:
        with self._data.lock:
            current = self._data.leases.get(self._namespace)
            if current is None or current[0] == holder or current[1] <= now:
                self._data.leases[self._namespace] = (holder, now + ttl)
                return True
            return False

    def release(self, holder: str) -> None:
        with self._data.lock:
            current = self._data.leases.get(self._namespace)
            if current is not None and current[0] == holder:
                del self._data.leases[self._namespace]

    def leader(self, now: float) -> str | None:
        with self._data.lock:
            current = self._data.leases.get(self._namespace)
            return current[0] if current is not None and current[1] > now else None

    def claim(self, entry: str, fire_time: float) -> bool:
        key = (self._namespace, entry)
        with self._data.lock:
            stored = self._data.runs.get(key)
            if stored is not None and stored >= fire_time:
                return False
            self._data.runs[key] = fire_time
            return True

    def last_run(self, entry: str) -> float | None:
        with self._data.lock:
            return self._data.runs.get((self._namespace, entry))

    def close(self) -> None:
        """Nothing to release: the data stays for the next store of the same name."""
