"""One Redis connection kept out of its pool for the hot paths (a loop of `delay()` calls,
a result read per task): redis-py's pool checkout and return and its command packer cost
more client CPU than the round trip itself.

The connection is used when no other thread has it; a thread that finds it busy takes one
from the pool as usual. A fork or a new client makes a new one; an error disconnects it
(the next use connects again).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis

_pack_one: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack_one
except ImportError:  # pragma: no cover - hiredis comes with conveyor[redis]
    _pack_one = None


def _pack(connection: Any, commands: Sequence[tuple[Any, ...]]) -> list[bytes]:
    """`commands` as byte strings to send: hiredis's packer when installed (redis-py's
    own does the same job with several times the overhead), else redis-py's."""
    if _pack_one is None:
        packed: list[bytes] = connection.pack_commands(commands)
        return packed
    return [b"".join([_pack_one(command) for command in commands])]


def _reply(connection: Any) -> Any:
    """The next reply on `connection`, or the exception an error reply stands for."""
    try:
        return connection.read_response()
    except redis.ResponseError as exc:
        return exc


class HeldConnection:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: tuple[redis.Redis, int, Any] | None = None  # client, pid, connection

    def send_all(self, client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send `commands` to `client`'s server in one write and read every reply: one round
        trip. An error reply comes back as its exception, in its place; a connection error
        raises (redis-py's), after which any of the commands may have run."""
        pool = client.connection_pool
        held = self._lock.acquire(blocking=False)
        try:
            connection = self._connection(client) if held else pool.get_connection()
        except BaseException:
            if held:
                self._lock.release()
            raise
        try:
            connection.send_packed_command(_pack(connection, commands))
            return [_reply(connection) for _ in commands]
        except BaseException:
            connection.disconnect()
            raise
        finally:
            if held:
                self._lock.release()
            else:
                pool.release(connection)

    def _connection(self, client: redis.Redis) -> Any:
        """The held connection for `client` (called with the lock taken; no I/O: it
        connects on its first send)."""
        held = self._held
        if held is None or held[0] is not client or held[1] != os.getpid():
            held = self._held = (client, os.getpid(), client.connection_pool.make_connection())
        return held[2]

    def close(self) -> None:
        with self._lock:
            held, self._held = self._held, None
        if held is not None and held[1] == os.getpid():
            held[2].disconnect()
