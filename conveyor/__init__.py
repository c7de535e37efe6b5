"""conveyor: a distributed task queue on a multi-broker transport layer."""

from conveyor.core.message import Delivery, Message
from conveyor.core.registry import create_backend, create_transport

__version__ = "0.1.0"
__all__ = ["Delivery", "Message", "create_backend", "create_transport"]
