"""conveyor: a distributed task queue on a multi-broker transport layer."""

from typing import Any

from conveyor import states
from conveyor.app import AsyncResult, Conveyor, Task
from conveyor.app.current import current_app, current_task, shared_task
from conveyor.canvas import (
    GroupResult,
    ResultSet,
    Signature,
    chain,
    chord,
    chunks,
    group,
    signature,
)
from conveyor.core.message import Delivery, Message
from conveyor.core.registry import create_backend, create_transport

Celery = Conveyor  # ported code keeps `app = Celery("proj")`
__version__ = "0.2.0"
_SCHEDULES = ("crontab", "solar")


def __getattr__(name: str) -> Any:
    """`conveyor.crontab` and `conveyor.solar`, imported on first use: they need the `beat`
    extra, which the base install does not have."""
    if name in _SCHEDULES:
        from conveyor import schedules

        return getattr(schedules, name)
    raise AttributeError(f"module 'conveyor' has no attribute {name!r}")


__all__ = [
    "AsyncResult",
    "Celery",
    "Conveyor",
    "Delivery",
    "GroupResult",
    "Message",
    "ResultSet",
    "Signature",
    "Task",
    "chain",
    "chord",
    "chunks",
    "create_backend",
    "create_transport",
    "crontab",
    "current_app",
    "current_task",
    "group",
    "shared_task",
    "signature",
    "solar",
    "states",
]
