"""The Redis transport (``redis://``, ``rediss://``): transport.py, the Lua scripts in lua/
(scripts.py loads them); the connection is conveyor.clients.redis."""

from conveyor.clients.redis import RedisOptions
from conveyor.transports.redis.transport import RedisTransport

__all__ = ["RedisOptions", "RedisTransport"]
