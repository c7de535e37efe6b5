"""Settings: Celery's lowercase names, the old uppercase names as aliases, env defaults.

Precedence, highest first: values set in code (`Conveyor(broker=...)`, `conf.update`,
`config_from_object`), then the environment (`CONVEYOR_BROKER_URL`,
`CONVEYOR_RESULT_BACKEND`, `CONVEYOR_WORKER_PROCESSES`), then the defaults below. With
nothing configured the broker and results live in SQLite files in the working directory,
so a newcomer needs no server.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from conveyor.app import celery_settings, setting_names
from conveyor.core.errors import ConfigurationError

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
    "task_publish_retry": True,
    "task_publish_retry_policy": None,
    "task_compression": None,
    "task_always_eager": False,
    "task_eager_propagates": False,
    "task_store_eager_result": False,
    "task_store_errors_even_if_ignored": False,
    "result_extended": False,
    "task_annotations": None,
    "task_inherit_parent_priority": False,
    "task_reject_on_worker_lost": None,
    "task_default_rate_limit": None,
    "task_soft_time_limit": None,
    "timezone": "UTC",
    "enable_utc": True,
    "beat_schedule": {},
    # Beat (docs/beat.md): where its lease and last runs live, the lease, the longest sleep.
    "beat_store_url": None,
    "beat_lease_timeout": 10.0,
    "beat_max_loop_interval": None,
    "beat_cron_starting_deadline": None,
    "imports": [],
    "include": [],
    "worker_concurrency": None,
    "worker_processes": None,
    "worker_pool": "threads",
    "worker_prefetch_multiplier": 4,
    "worker_quick_prefetch": 32,
    "worker_shutdown_timeout": 30.0,
    # Seconds a pool under --autoscale has more slots than it needs before it shrinks.
    "worker_autoscale_keepalive": 30.0,
    # Events and their history (conveyor.app.events).
    "worker_send_task_events": True,
    "task_send_sent_event": True,
    "events_store_url": None,
    "events_expires": 7 * 86400.0,
    "events_max_tasks": 200_000,
    # Message signing (signing.py): key id -> secret, the id to sign with, lifetime in s.
    "message_signing_keys": {},
    "message_signing_key_id": None,
    "message_signing_ttl": 3600.0,
    # An unknown setting name raises instead of warning (setting_names.py).
    "strict_settings": False,
    "worker_middleware": (),
    "worker_max_tasks_per_child": None,
    "worker_disable_rate_limits": False,
    "worker_max_memory_per_child": None,
    "worker_enable_remote_control": True,
    # The worker's logging (worker/logs.py); a format of None is conveyor's (utils/log.py).
    "worker_hijack_root_logger": True,
    "worker_log_format": None,
    "worker_task_log_format": None,
    "worker_redirect_stdouts": True,
    "worker_redirect_stdouts_level": "WARNING",
    # Publisher confirms (docs/guarantees.md, "Publishing"): "each" waits for every confirm in
    # delay(); "pipelined" writes at once and tracks up to broker_publish_window confirms.
    "broker_publish_confirm": "each",
    "broker_publish_window": 1000,
}

PUBLISH_CONFIRM_MODES = ("each", "pipelined")


def _check_value(name: str, value: Any) -> None:
    """Refuse a bad value of a setting whose values are few, naming the setting."""
    if name == "broker_publish_confirm" and value not in PUBLISH_CONFIRM_MODES:
        raise ConfigurationError(
            f"broker_publish_confirm={value!r}: must be one of {', '.join(PUBLISH_CONFIRM_MODES)}"
        )
    if name == "broker_publish_window" and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        raise ConfigurationError(f"broker_publish_window={value!r}: must be a whole number >= 1")


# Every name conveyor knows: its own settings and each Celery setting of the table.
KNOWN = frozenset({*DEFAULTS, *celery_settings.BY_NAME})

ENVIRONMENT = {
    "broker_url": "CONVEYOR_BROKER_URL",
    "result_backend": "CONVEYOR_RESULT_BACKEND",
    "worker_processes": "CONVEYOR_WORKER_PROCESSES",
}

# Celery 3 names, as found in config modules written for Celery (from the settings table).
ALIASES = celery_settings.OLD_NAMES


def _is_setting_value(value: Any) -> bool:
    return not (inspect.ismodule(value) or inspect.isroutine(value) or inspect.isclass(value))


class Settings(MutableMapping[str, Any]):
    """`app.conf`: a mapping with attribute access (`conf.broker_url`)."""

    def __init__(self, **explicit: Any) -> None:
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_own_defaults", {})  # this app's copies of mutable ones
        self.update(explicit)

    def __getitem__(self, name: str) -> Any:
        values = self._values
        if name in values:
            return values[name]
        env = ENVIRONMENT.get(name)
        if env and os.environ.get(env):
            return os.environ[env]
        if name in DEFAULTS:
            default = DEFAULTS[name]
            if isinstance(default, (dict, list)):
                # `conf.beat_schedule["x"] = ...` changes this app's copy, never DEFAULTS.
                return self._own_defaults.setdefault(name, copy.deepcopy(default))
            return default
        return celery_settings.BY_NAME[name].default  # Celery's, for a setting not honoured

    def __setitem__(self, name: str, value: Any) -> None:
        """Set a setting (a Celery 3 uppercase name means its new name); a Celery
        setting conveyor cannot honour raises RefusedSetting (celery_settings.py)."""
        name = ALIASES.get(name, name)
        celery_settings.check(name, value)
        setting_names.check(name, KNOWN, strict=bool(self["strict_settings"]))
        _check_value(name, value)
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

    def from_object(self, obj: Any, namespace: str | None = None) -> None:
        """Load settings from a module, a path ('proj.celeryconfig', 'proj.settings:conf')
        or any object.

        Lowercase public names are taken as they are; uppercase names must be known Celery
        aliases, and unknown ones are logged and skipped rather than guessed. With a
        `namespace` (Django's ``namespace="CELERY"``) only ``CELERY_<NAME>`` names are
        read, as the lowercase ``<name>``: CELERY_BROKER_URL is broker_url.
        """
        if isinstance(obj, str):
            obj = load_object(obj)
        items = obj.items() if isinstance(obj, Mapping) else vars(obj).items()
        if namespace:
            prefix = f"{namespace}_"
            items = [(n[len(prefix) :].lower(), v) for n, v in items if n.startswith(prefix)]
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


def load_object(path: str) -> Any:
    """The module 'pkg.mod', or the attribute 'attr' of 'pkg.mod:attr' (or 'pkg.mod.attr'
    when 'pkg.mod.attr' is not a module itself)."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        head, _, tail = module_name.rpartition(".")
        missing = ConfigurationError(f"cannot import configuration {path!r}: {exc}")
        if attribute or not head or exc.name != module_name:
            raise missing from exc
        parent = load_object(head)
        if not hasattr(parent, tail):
            raise missing from exc
        return getattr(parent, tail)
    if not attribute:
        return module
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(
            f"configuration {path!r}: module {module.__name__!r} has no {attribute!r}"
        ) from None
