"""Choosing and opening the schedule store: the broker's server when it can hold one, else
the result backend's, else an explicit `beat_store_url` or a `--schedule` file.

    memory://name          in this process only (tests)
    redis://, rediss://    a lease key with a TTL and a hash of last runs (stores/redis.py)
    sqlite:///, sql+...    two tables beside the broker's or backend's (stores/sql.py)
    zookeeper://           an ephemeral leader node; the session is the lease
    memcached://           a lease key with a TTL, check-and-set claims (stores/memcached.py)

AMQP holds no such state, so with a RabbitMQ broker the backend's store is used.
The URL's query options that the store knows (connect_timeout, TLS files) are used; the
others are the broker's and are left to it. ZooKeeper's session timeout is beat's lease
timeout, given by the caller. With a namespace (the URL's `?namespace=`, else the broker
URL's) every key, table and path of the store starts with it.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any

from conveyor.beat.store import ScheduleStore
from conveyor.core.errors import ConfigurationError
from conveyor.core.options import parse_options
from conveyor.core.transport import namespace_of
from conveyor.core.url import URL, parse_url

STORES = {
    "memory": ("conveyor.beat.stores.memory", "MemoryScheduleStore"),
    "redis": ("conveyor.beat.stores.redis", "RedisScheduleStore"),
    "rediss": ("conveyor.beat.stores.redis", "RedisScheduleStore"),
    "sqlite": ("conveyor.beat.stores.sql", "SQLScheduleStore"),
    "sql+sqlite": ("conveyor.beat.stores.sql", "SQLScheduleStore"),
    "sql+postgresql": ("conveyor.beat.stores.sql", "SQLScheduleStore"),
    "sql+mysql": ("conveyor.beat.stores.sql", "SQLScheduleStore"),
    "zookeeper": ("conveyor.beat.stores.zookeeper", "ZooKeeperScheduleStore"),
    "memcached": ("conveyor.beat.stores.memcached", "MemcachedScheduleStore"),
}


def store_url(conf: Any, schedule_file: str | None = None) -> str:
    """Where beat keeps its state for an app with settings `conf` (see the module doc)."""
    if schedule_file:
        return f"sqlite:///{os.path.abspath(schedule_file)}"
    explicit = conf.beat_store_url
    if explicit:
        return str(explicit)
    for url in (conf.broker_url, conf.result_backend):
        if parse_url(url).scheme in STORES:
            return str(url)
    raise ConfigurationError(
        f"beat keeps its leader lease and last-run times in a Redis, SQL or ZooKeeper "
        f"store, and neither the broker ({parse_url(conf.broker_url)}) nor the result "
        f"backend ({parse_url(conf.result_backend)}) is one: set beat_store_url, or pass "
        "--schedule FILE for a local SQLite file"
    )


def open_store(
    url: str | URL, namespace: str, *, prefix: str = "", **options: Any
) -> ScheduleStore:
    """The store at `url` for beat processes of `namespace` (usually the app's name).
    `prefix`: what every key, table or path starts with, the URL's `namespace` option, else
    the given one (the app passes its broker's). `options` the store's Options do not have
    (lease_timeout for most) are not its concern."""
    parsed = parse_url(url)
    prefix = namespace_of(parsed, prefix)
    if parsed.scheme not in STORES:
        raise ConfigurationError(
            f"{parsed} cannot hold beat's state; use one of: {', '.join(sorted(STORES))}"
        )
    module_name, class_name = STORES[parsed.scheme]
    cls = getattr(importlib.import_module(module_name), class_name)
    if parsed.scheme == "memory":
        store: ScheduleStore = cls(parsed, namespace, prefix=prefix)
    else:
        known = {f.name for f in dataclasses.fields(cls.Options)} - {"namespace"}  # prefix
        given = {k: v for k, v in parsed.options.items() if k in known}
        overrides = {k: v for k, v in options.items() if k in known}
        options_ = parse_options(cls.Options, given, **overrides)
        store = cls(parsed, namespace, options_, prefix=prefix)
    return store
