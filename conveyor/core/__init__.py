"""Transport-agnostic messaging: the transport contract, messages, codecs, URLs, the registry,
producer and consumer."""

from conveyor.core.errors import *  # noqa: F403
from conveyor.core.message import DeadLetter, Delivery, Message
from conveyor.core.registry import create_backend, create_transport
from conveyor.core.url import URL, parse_url

__all__ = [
    "URL",
    "DeadLetter",
    "Delivery",
    "Message",
    "create_backend",
    "create_transport",
    "parse_url",
]
