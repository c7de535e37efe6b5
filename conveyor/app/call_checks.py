"""Refusing bad task options and arguments before anything is sent, naming the bad part.

* Task options (at declaration): retry counts, delays, backoffs, time limits, priority.
* Call options (at send): a negative countdown, an `expires` before the `eta` (the task
  would expire before it may run), a priority outside 0-255.
* Arguments the JSON codec cannot carry: the error names the first bad value by its path
  (``kwargs.when``, ``args[1].points[0]``) and says what it is (NaN, an object, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from conveyor.app.exceptions import InvalidTaskOption

MAX_PRIORITY = 255  # AMQP's limit; the other brokers order any int, but keep one range


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_task_options(task: Any) -> None:
    """Refuse task options that cannot work; `task` is the new Task class."""
    name = getattr(task, "name", "") or "task"
    max_retries = task.max_retries
    if max_retries is not None and (
        not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0
    ):
        raise InvalidTaskOption(
            f"{name}: max_retries must be None or a whole number >= 0, not {max_retries!r}"
        )
    for option in ("default_retry_delay", "retry_backoff_max"):
        value = getattr(task, option, 0)
        if not _number(value) or not 0 <= value < math.inf:
            raise InvalidTaskOption(f"{name}: {option} must be seconds >= 0, not {value!r}")
    backoff = getattr(task, "retry_backoff", False)
    if not isinstance(backoff, bool) and (not _number(backoff) or not 0 < backoff < math.inf):
        raise InvalidTaskOption(
            f"{name}: retry_backoff must be True, False or seconds > 0, not {backoff!r}"
        )
    for option in ("time_limit", "soft_time_limit"):
        value = getattr(task, option, None)
        if value is not None and (not _number(value) or not 0 < value < math.inf):
            raise InvalidTaskOption(f"{name}: {option} must be None or seconds > 0, not {value!r}")
    check_priority(task.priority, f"{name}: priority")


def check_priority(priority: Any, what: str = "priority") -> None:
    if priority is None:
        return
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise InvalidTaskOption(f"{what} must be a whole number 0-{MAX_PRIORITY}, not {priority!r}")
    if not 0 <= priority <= MAX_PRIORITY:
        raise InvalidTaskOption(f"{what} must be 0-{MAX_PRIORITY}, not {priority}")


def check_call(
    countdown: float | None, due: float | None, expires_at: float | None, priority: Any
) -> None:
    """Refuse call options that cannot work (times are epoch seconds)."""
    if countdown is not None and (not _number(countdown) or not 0 <= countdown < math.inf):
        raise InvalidTaskOption(f"countdown must be seconds >= 0, not {countdown!r}")
    if due is not None and expires_at is not None and expires_at <= due:
        raise InvalidTaskOption(
            f"expires ({_utc(expires_at)}) is not after the eta ({_utc(due)}): "
            "the task would expire before it may run"
        )
    check_priority(priority)


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def unencodable_json(args: Any, kwargs: Any) -> str | None:
    """The path and kind of the first value JSON cannot carry exactly, if any."""
    for path, value in _walk([("args", args), ("kwargs", kwargs)]):
        problem = _json_problem(value)
        if problem:
            return f"{path} is {problem}"
    return None


def _json_problem(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r}, which JSON cannot carry"
    if value is None or isinstance(value, (str, bool, int, float, list, tuple, dict)):
        return ""
    return f"a {type(value).__module__}.{type(value).__qualname__}, which JSON cannot encode"


def _walk(items: list[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Every value under `items` with its path, depth first, without recursion. A dict key
    JSON refuses (a tuple, an object) is given as the value at ``<path> key <repr>``."""
    stack = list(reversed(items))
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            children = []
            for key, child in value.items():
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    yield f"{path} key {key!r}", key
                children.append((f"{path}.{key}", child))
            stack.extend(reversed(children))
        elif isinstance(value, (list, tuple)):
            stack.extend(reversed([(f"{path}[{i}]", child) for i, child in enumerate(value)]))
