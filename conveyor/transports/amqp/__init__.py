"""The RabbitMQ transport (``amqp://``, ``amqps://``) on pika: transport.py, and one module
per concern (link, confirms, inbox, topology, dead letters, broadcast, codec, options)."""

from conveyor.transports.amqp.options import AMQPOptions
from conveyor.transports.amqp.transport import AMQPTransport

__all__ = ["AMQPOptions", "AMQPTransport"]
