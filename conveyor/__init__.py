"""conveyor: a distributed task queue on a multi-broker transport layer."""

from conveyor.app import AsyncResult, Conveyor, Signature, Task, states
from conveyor.core.message import Delivery, Message
from conveyor.core.registry import create_backend, create_transport

__version__ = "0.2.0"
__all__ = [
    "AsyncResult",
    "Conveyor",
    "Delivery",
    "Message",
    "Signature",
    "Task",
    "create_backend",
    "create_transport",
    "states",
]
