"""Settings: Celery's lowercase names, the old uppercase names as aliases, env defaults.

Precedence, highest first: values set in code (`Conveyor(broker=...)`, `conf.update`,
`config_from_object`), then the environment (`CONVEYOR_BROKER_URL`,
`CONVEYOR_RESULT_BACKEND`, `CONVEYOR_WORKER_PROCESSES`), then the defaults below. With
nothing configured the broker and results live in SQLite files in the working directory,
so a newcomer needs no server.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from conveyor.app import setting_names

log = logging.getLogger("conveyor.config")

DEFAULTS: dict[str, Any] = {
    "broker_url": "sqlite:///conveyor.db",
    "result_backend": "sqlite:///conveyor-results.db",
    "task_serializer": "json",
    "accept_content": ["json"],
    "result_expires": 86400.0,
    "task_routes": {},
    "task_default_queue": "default",
    "task_default_priority": 0,
    "task_acks_late": True,
    "task_track_started": False,
    "task_ignore_result": False,
    "task_time_limit": None,
    "task_soft_time_limit": None,
    "timezone": "UTC",
    "enable_utc": True,
    "beat_schedule": {},
    # Beat (docs/beat.md): where its lease and last runs live, the lease, the longest sleep.
    "beat_store_url": None,
    "beat_lease_timeout": 10.0,
    "beat_max_loop_interval": None,
    "imports": [],
    "include": [],
    "worker_concurrency": None,
    "worker_processes": None,
    "worker_pool": "threads",
    "worker_prefetch_multiplier": 4,
    "worker_quick_prefetch": 32,
    "worker_shutdown_timeout": 30.0,
    # Events and their history (conveyor.app.events).
    "worker_send_task_events": True,
    "task_send_sent_event": True,
    "events_store_url": None,
    "events_expires": 7 * 86400.0,
    "events_max_tasks": 200_000,
    # An unknown setting name raises instead of warning (setting_names.py).
    "strict_settings": False,
}

ENVIRONMENT = {
    "broker_url": "CONVEYOR_BROKER_URL",
    "result_backend": "CONVEYOR_RESULT_BACKEND",
    "worker_processes": "CONVEYOR_WORKER_PROCESSES",
}

# Celery 3 names, as found in config modules written for Celery.
ALIASES = {
    "BROKER_URL": "broker_url",
    "CELERY_BROKER_URL": "broker_url",
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_TASK_SERIALIZER": "task_serializer",
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_RESULT_EXPIRES": "result_expires",
    "CELERY_ROUTES": "task_routes",
    "CELERY_TASK_ROUTES": "task_routes",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_DEFAULT_PRIORITY": "task_default_priority",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERY_TIMEZONE": "timezone",
    "CELERY_ENABLE_UTC": "enable_utc",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERYBEAT_MAX_LOOP_INTERVAL": "beat_max_loop_interval",
    "CELERY_IMPORTS": "imports",
    "CELERY_INCLUDE": "include",
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERYD_POOL": "worker_pool",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERY_SEND_EVENTS": "worker_send_task_events",
    "CELERY_SEND_TASK_SENT_EVENT": "task_send_sent_event",
}


def _is_setting_value(value: Any) -> bool:
    return not (inspect.ismodule(value) or inspect.isroutine(value) or inspect.isclass(value))


class Settings(MutableMapping[str, Any]):
    """`app.conf`: a mapping with attribute access (`conf.broker_url`)."""

    def __init__(self, **explicit: Any) -> None:
        object.__setattr__(self, "_values", {})
        self.update(explicit)

    def __getitem__(self, name: str) -> Any:
        values = self._values
        if name in values:
            return values[name]
        env = ENVIRONMENT.get(name)
        if env and os.environ.get(env):
            return os.environ[env]
        return DEFAULTS[name]

    def __setitem__(self, name: str, value: Any) -> None:
        name = ALIASES.get(name, name)
        setting_names.check(name, DEFAULTS, strict=bool(self["strict_settings"]))
        self._values[name] = value
        self.__dict__.pop(name, None)

    def __delitem__(self, name: str) -> None:
        del self._values[name]
        self.__dict__.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter({**DEFAULTS, **self._values})

    def __len__(self) -> int:
        return len({**DEFAULTS, **self._values})

    def __getattr__(self, name: str) -> Any:
        """Read a setting; it is then kept as an instance attribute, so the next read (every
        `delay()` reads several) is a plain lookup, until the setting is set or deleted.
        Settings read from the environment are read afresh each time."""
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(f"no setting named {name!r}") from None
        if name not in ENVIRONMENT:
            object.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def is_set(self, name: str) -> bool:
        """True when `name` was set in code (not a default or environment value)."""
        return name in self._values

    def from_object(self, obj: Any) -> None:
        """Load settings from a module, a module path ('proj.celeryconfig') or any object.

        Lowercase public names are taken as they are; uppercase names must be known Celery
        aliases, and unknown ones are logged and skipped rather than guessed.
        """
        if isinstance(obj, str):
            obj = importlib.import_module(obj)
        items = obj.items() if isinstance(obj, Mapping) else vars(obj).items()
        for name, value in items:
            if name.startswith("_") or not _is_setting_value(value):
                continue
            if name.isupper():
                if name in ALIASES:
                    self[ALIASES[name]] = value
                else:
                    log.warning("ignoring unknown uppercase setting %s", name)
            else:
                self[name] = value

    def __repr__(self) -> str:
        return f"<Settings {sorted(self._values)}>"
