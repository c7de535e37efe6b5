"""conveyor: a distributed task queue on a multi-broker transport layer."""

from conveyor import states
from conveyor.app import AsyncResult, Conveyor, Task
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
    "group",
    "signature",
    "states",
]
