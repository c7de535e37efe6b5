"""The plugin registry: URL scheme -> transport or backend class.

Built-in schemes are listed here as import paths, so a missing client library costs
nothing until its scheme is used. Third parties add schemes through the entry-point groups
``conveyor.transports`` and ``conveyor.backends`` (entry point name = URL scheme). A plugin
never shadows a built-in, so a built-in scheme is found without reading the installed
distributions' entry points (that scan, and importlib.metadata itself, cost a process's
start-up tens of milliseconds; they run only for a scheme that is not built in).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from conveyor.core.errors import MissingDependency, UnknownScheme
from conveyor.core.options import parse_options
from conveyor.core.transport import Transport
from conveyor.core.url import URL, parse_url

TRANSPORT_GROUP = "conveyor.transports"
BACKEND_GROUP = "conveyor.backends"

_SQL = "conveyor.transports.sql:SQLTransport"
BUILTIN_TRANSPORTS = {
    "memory": "conveyor.transports.memory:MemoryTransport",
    "redis": "conveyor.transports.redis:RedisTransport",
    "rediss": "conveyor.transports.redis:RedisTransport",
    "amqp": "conveyor.transports.amqp:AMQPTransport",
    "amqps": "conveyor.transports.amqp:AMQPTransport",
    "zookeeper": "conveyor.transports.zookeeper:ZooKeeperTransport",
    "sqlite": _SQL,
    "sql+sqlite": _SQL,
    "sql+postgresql": _SQL,
    "sql+mysql": _SQL,
}
_SQL_BACKEND = "conveyor.backends.sql:SQLBackend"
BUILTIN_BACKENDS = {
    "memory": "conveyor.backends.memory:MemoryBackend",
    "redis": "conveyor.backends.redis:RedisBackend",
    "rediss": "conveyor.backends.redis:RedisBackend",
    "memcached": "conveyor.backends.memcached:MemcachedBackend",
    "sqlite": _SQL_BACKEND,
    "sql+sqlite": _SQL_BACKEND,
    "sql+postgresql": _SQL_BACKEND,
    "sql+mysql": _SQL_BACKEND,
}
EXTRAS = {
    "redis": "redis",
    "amqp": "amqp",
    "zookeeper": "zookeeper",
    "sql": "sql",
    "memcached": "memcached",
}


@dataclass(frozen=True)
class Registration:
    scheme: str
    target: str
    origin: str  # "built-in" or "plugin (<distribution>)"


def registrations(group: str) -> dict[str, Registration]:
    """Every scheme in `group`, built-in first; a plugin may not shadow a built-in."""
    from importlib.metadata import entry_points

    builtin = BUILTIN_TRANSPORTS if group == TRANSPORT_GROUP else BUILTIN_BACKENDS
    found = {s: Registration(s, t, "built-in") for s, t in builtin.items()}
    for ep in entry_points(group=group):
        if ep.name not in found:
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            found[ep.name] = Registration(ep.name, ep.value, f"plugin ({dist})")
    return found


def load(group: str, scheme: str) -> Any:
    """Import and return the class registered for `scheme`."""
    builtin = BUILTIN_TRANSPORTS if group == TRANSPORT_GROUP else BUILTIN_BACKENDS
    if scheme in builtin:
        return _import(Registration(scheme, builtin[scheme], "built-in"))
    known = registrations(group)
    if scheme not in known:
        import difflib

        kind = "transport" if group == TRANSPORT_GROUP else "result backend"
        near = difflib.get_close_matches(scheme, known, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise UnknownScheme(
            f"no {kind} for scheme {scheme!r}.{hint} Known schemes: {', '.join(sorted(known))}"
        )
    return _import(known[scheme])


def _import(registration: Registration) -> Any:
    scheme = registration.scheme
    module_name, _, attribute = registration.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if registration.origin != "built-in":
            raise MissingDependency(
                f"plugin for scheme {scheme!r} failed to import: {exc}"
            ) from exc
        leaf = module_name.rsplit(".", 1)[-1]
        extra = next((e for key, e in EXTRAS.items() if key in leaf), "all")
        raise MissingDependency(
            f"the {scheme!r} scheme needs a client library that is not installed ({exc.name}): "
            f"pip install 'conveyor[{extra}]'"
        ) from exc
    return getattr(module, attribute)


def create_transport(url: str | URL, **options: Any) -> Transport:
    """Build a transport from a URL; keyword `options` override the URL's query options."""
    parsed = parse_url(url)
    cls: type[Transport] = load(TRANSPORT_GROUP, parsed.scheme)
    return cls(parsed, parse_options(cls.Options, parsed.options, **options))


def load_for_url(group: str, url: str | URL) -> Any:
    """Import the class that serves `url` (and so its client library) without building
    one: nothing connects. The worker does this before it forks its siblings."""
    return load(group, parse_url(url).scheme)


def create_backend(url: str | URL, **options: Any) -> Any:
    """Build a result backend from a URL; keyword `options` override the URL's query options."""
    parsed = parse_url(url)
    cls = load(BACKEND_GROUP, parsed.scheme)
    return cls(parsed, parse_options(cls.Options, parsed.options, **options))
