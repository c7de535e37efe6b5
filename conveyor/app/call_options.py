"""Celery's `apply_async` options that have no field of their own in conveyor's message.

* ``time_limit`` / ``soft_time_limit`` travel in the ``timelimit`` header as
  ``[hard, soft]`` (Celery's name and shape; either may be null); the worker prefers them
  to the task's own limits (worker/time_limits.py), and a retry keeps them with the headers.
* ``shadow`` travels in the ``shadow`` header: the name logs and events show for the call.
* ``routing_key`` / ``exchange``: conveyor has one direct exchange whose routing keys are
  queue names, so a routing key names the queue; an exchange alone names it when no
  routing key is given (Celery's common "exchange and queue of one name" layout).
* ``compression`` ('zlib', 'bzip2', 'lzma') compresses the body (core/compression.py).
* ``reply_to`` is the message's reply-to property.
* ``retry`` / ``retry_policy`` shape the publish retries on a broker that is down
  (Celery's linear policy: ``interval_start + n * interval_step`` capped at
  ``interval_max``, ``max_retries`` times); the settings ``task_publish_retry`` and
  ``task_publish_retry_policy`` are the defaults.
* ``add_to_parent``: accepted; conveyor records a task sent from a running task as its
  child through ``parent_id`` whatever its value.

Anything else is refused with a TypeError naming the option, so a typo is never ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.app import context
from conveyor.app.exceptions import TaskError
from conveyor.core.compression import method as compression_method
from conveyor.core.retry import Backoff

TIME_LIMIT_HEADER = "timelimit"
SHADOW_HEADER = "shadow"
CALL_OPTIONS = frozenset(
    {
        "time_limit",
        "soft_time_limit",
        "shadow",
        "routing_key",
        "exchange",
        "compression",
        "reply_to",
        "retry",
        "retry_policy",
        "add_to_parent",
    }
)
# Celery's default publish retry policy, for the keys a given policy leaves out.
POLICY_DEFAULTS = {
    "max_retries": 3,
    "interval_start": 0.0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}


class InvalidCallOption(TaskError, ValueError):
    """An `apply_async` option with a value that cannot work; the message names it."""


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What the Celery options of one call add to its message and its publish."""

    queue: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    compression: str | None = None
    reply_to: str | None = None
    backoff: Backoff | None = None

    def merged_headers(self, headers: dict[str, Any] | None) -> dict[str, Any] | None:
        """The caller's headers with these added (a call's own option wins)."""
        if not self.headers:
            return headers
        return {**(headers or {}), **self.headers}


def queue_of(options: Mapping[str, Any]) -> str | None:
    """The queue that routing options name: `queue` (a name, or an object with a `name`,
    like a Kombu Queue), else `routing_key`, else `exchange`."""
    for key in ("queue", "routing_key", "exchange"):
        value = options.get(key)
        value = getattr(value, "name", value)
        if value:
            if not isinstance(value, str):
                raise InvalidCallOption(f"{key} must be a queue name, not {value!r}")
            return value
    return None


def parent_priority() -> int | None:
    """The priority of the task running on this thread (`task_inherit_parent_priority`)."""
    running = context.current()
    priority = None if running is None else running.delivery_info.get("priority")
    return priority if isinstance(priority, int) else None


def _limit(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidCallOption(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def publish_backoff(retry: Any, policy: Any) -> Backoff | None:
    """The publish retry for `retry`/`retry_policy`; None keeps the producer's own."""
    if retry is not None and not isinstance(retry, bool):
        raise InvalidCallOption(f"retry must be True or False, not {retry!r}")
    if retry is False:
        return Backoff(retries=0)
    if policy is None:
        return None
    if not isinstance(policy, Mapping):
        raise InvalidCallOption(f"retry_policy must be a dict, not {type(policy).__name__}")
    unknown = set(policy) - {*POLICY_DEFAULTS, "retry_errors"}
    if unknown:
        raise InvalidCallOption(f"unknown retry_policy keys: {', '.join(sorted(unknown))}")
    if policy.get("retry_errors") is not None:
        raise InvalidCallOption(
            "retry_policy retry_errors is not supported: conveyor retries a publish on "
            "connection errors only (BrokerUnavailable)"
        )
    values = {**POLICY_DEFAULTS, **{k: v for k, v in policy.items() if k != "retry_errors"}}
    retries = values["max_retries"]
    if retries is not None and (not isinstance(retries, int) or retries < 0):
        raise InvalidCallOption(f"retry_policy max_retries must be >= 0, not {retries!r}")
    try:
        start, step, cap = (
            float(values[k]) for k in ("interval_start", "interval_step", "interval_max")
        )
    except (TypeError, ValueError):
        raise InvalidCallOption(
            f"retry_policy intervals must be numbers: {dict(policy)!r}"
        ) from None
    return Backoff(
        initial=start, factor=1.0, step=step, maximum=cap, retries=retries, budget=math.inf
    )


def prepare(
    options: Mapping[str, Any],
    *,
    default_retry: bool,
    default_policy: Any,
    default_compression: str | None,
) -> CallOptions:
    """Check and translate the Celery options of one `send_task` call."""
    unknown = set(options) - CALL_OPTIONS
    if unknown:
        raise TypeError(f"unknown apply_async options: {', '.join(sorted(unknown))}")
    headers: dict[str, Any] = {}
    hard, soft = (
        None if options.get(name) is None else _limit(name, options[name])
        for name in ("time_limit", "soft_time_limit")
    )
    if hard is not None or soft is not None:
        headers[TIME_LIMIT_HEADER] = [hard, soft]
    shadow = options.get("shadow")
    if shadow is not None:
        if not isinstance(shadow, str) or not shadow:
            raise InvalidCallOption(f"shadow must be a task name, not {shadow!r}")
        headers[SHADOW_HEADER] = shadow
    compression = options.get("compression", default_compression)
    if compression is not None:
        compression_method(compression)  # an unknown name fails here, before sending
    reply_to = options.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, str):
        raise InvalidCallOption(f"reply_to must be a queue name, not {reply_to!r}")
    retry = options.get("retry")
    return CallOptions(
        queue=queue_of({k: options.get(k) for k in ("routing_key", "exchange")}),
        headers=headers,
        compression=compression,
        reply_to=reply_to,
        backoff=publish_backoff(
            default_retry if retry is None else retry,
            options.get("retry_policy", default_policy),
        ),
    )
