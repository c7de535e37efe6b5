"""Objects shared by name within one process, for the ``memory://name`` transport and backend."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from conveyor.core.url import URL

T = TypeVar("T")


class PerName(Generic[T]):
    """One object per URL name (host, else path, else "default"), made on first use.

    Everything built from the same ``memory://name`` URL in this process shares it.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._objects: dict[str, T] = {}
        self._lock = threading.Lock()

    def __call__(self, url: URL, namespace: str = "") -> T:
        """The object of `url`'s name; a `namespace` (a transport option) has its own."""
        name = url.host.name if url.host else url.path.strip("/") or "default"
        name = f"{namespace}.{name}" if namespace else name
        with self._lock:
            found = self._objects.get(name)
            if found is None:
                found = self._objects[name] = self._factory()
            return found
