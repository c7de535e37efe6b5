"""Event history stores (see base.py for the contract), chosen by URL scheme.

memory:// -> MemoryEventStore; redis://, rediss:// -> RedisEventStore; sqlite:///,
sql+postgresql://, sql+mysql:// -> SQLEventStore. The client library of a store is imported
only when a store of that kind is opened. With a namespace, Redis keys start with
``<namespace>:``, SQL tables with ``<namespace>_`` and a memory store is one of its own.
"""

from __future__ import annotations

from conveyor.backends.events.base import (
    DEFAULT_EXPIRES,
    DEFAULT_MAX_TASKS,
    STATES,
    Event,
    EventStore,
    TaskQuery,
    TaskRow,
)
from conveyor.core.errors import ConfigurationError
from conveyor.core.transport import namespace_of
from conveyor.core.url import URL, parse_url

__all__ = [
    "DEFAULT_EXPIRES",
    "DEFAULT_MAX_TASKS",
    "SCHEMES",
    "STATES",
    "Event",
    "EventStore",
    "TaskQuery",
    "TaskRow",
    "open_store",
]
SCHEMES = ("memory", "redis", "rediss", "sqlite", "sql+sqlite", "sql+postgresql", "sql+mysql")


def open_store(
    url: str | URL,
    *,
    expires: float = DEFAULT_EXPIRES,
    max_tasks: int = DEFAULT_MAX_TASKS,
    namespace: str = "",
) -> EventStore:
    """The store at `url`; its keys or tables carry the URL's `namespace` option, else the
    given one (the app passes its broker's)."""
    parsed = parse_url(url)
    namespace = namespace_of(parsed, namespace)
    scheme = parsed.scheme
    if scheme == "memory":
        from conveyor.backends.events.memory import MemoryEventStore

        return MemoryEventStore(parsed, expires=expires, max_tasks=max_tasks, namespace=namespace)
    if scheme in ("redis", "rediss"):
        from conveyor.backends.events.redis import RedisEventStore

        return RedisEventStore(parsed, expires=expires, max_tasks=max_tasks, namespace=namespace)
    if scheme in ("sqlite", "sql+sqlite", "sql+postgresql", "sql+mysql"):
        from conveyor.backends.events.sql import SQLEventStore

        return SQLEventStore(parsed, expires=expires, max_tasks=max_tasks, namespace=namespace)
    raise ConfigurationError(
        f"no event store for {parsed}: events_store_url takes one of {', '.join(SCHEMES)}"
    )
