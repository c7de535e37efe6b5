"""`task_annotations`: task attributes set from the configuration, as in Celery.

The setting is a dict of task name to attributes (a dict that has no entry for the exact
name gives the first glob pattern that matches, such as ``"*"`` or ``"tasks.*"``), an
object with ``annotate(task) -> dict | None``, or a list of these; across the list the
first value for each attribute wins. Values are set on the task's class,
so a function given for a hook (``on_failure``) becomes a method and receives ``self``.
Annotations apply when a task is registered and again when a worker imports its task
modules (the configuration may be loaded after the tasks are declared). A bad rate_limit
raises there, as it does on the decorator.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from conveyor.app.task import Task, check_task_class
from conveyor.core.errors import ConfigurationError


def _entries(setting: Any) -> list[Any]:
    if setting is None:
        return []
    return list(setting) if isinstance(setting, (list, tuple)) else [setting]


def _match(entry: Any, task: Task) -> Mapping[str, Any] | None:
    if isinstance(entry, Mapping):
        if task.name in entry:
            return entry[task.name]
        for pattern, attributes in entry.items():
            if fnmatchcase(task.name, pattern):
                return attributes
        return None
    annotate = getattr(entry, "annotate", None)
    if annotate is None:
        raise ConfigurationError(
            f"task_annotations entry {entry!r} is neither a dict nor has annotate(task)"
        )
    return annotate(task)


def annotate(task: Task, setting: Any) -> None:
    """Set the attributes `setting` gives `task` on its class."""
    cls = type(task)
    chosen: dict[str, Any] = {}
    for entry in _entries(setting):
        for name, value in (_match(entry, task) or {}).items():
            chosen.setdefault(name, value)
    for name, value in chosen.items():
        setattr(cls, name, value)
    if chosen:
        check_task_class(cls)
