"""The Lua scripts behind the Redis transport: every state change is one atomic script.

Key layout per queue (the ``{queue}`` hash tag keeps a queue's keys in one cluster slot):

* ``conveyor:{q}:ready``      LIST, producers LPUSH on the left, consumers take from the right.
* ``conveyor:{q}:delayed``    ZSET, score = due time (server clock, ms), member = 16 hex digits
  of ``conveyor:{q}:seq`` (unique and in publish order among equal due times) + element.
* ``conveyor:{q}:held:<id>``  LIST per consumer: what it holds, newest on the left.
* ``conveyor:{q}:consumers``  ZSET, member = consumer id, score = lease expiry (server ms).
* ``conveyor:{q}:dead``       LIST, oldest on the left: ``<ms>:<len(reason)>:<reason>`` + element.

An element is ``<delivery count>:<packed envelope>``: the count the *next* delivery will
carry, so scripts raise it without decoding the envelope. A fresh message is the bare
envelope (it starts with the envelope's magic, never a digit) and counts 1, which spares a
copy per message on publish and on fetch. Every time is the server's
``TIME``, so clients with skewed clocks agree on leases and due times.

The scripts are the ``lua/*.lua`` files beside this module (package data), read once at
import: ``common.lua`` (helpers and the KEYS table) goes before every script but
``ack.lua``, after two lines defining conveyor's constants MAX_REASON and MAGIC.
"""

from __future__ import annotations

from importlib.resources import files
from typing import NamedTuple

from conveyor.core.envelope import MAGIC
from conveyor.core.transport import MAX_DELIVERIES_REASON


class Keys(NamedTuple):
    """A queue's keys; `common()` is the KEYS prefix every script takes."""

    ready: bytes
    delayed: bytes
    seq: bytes
    dead: bytes
    consumers: bytes
    held_prefix: bytes  # + consumer id

    def common(self) -> list[bytes]:
        return [self.ready, self.delayed, self.seq, self.dead, self.consumers]


def keys_for(queue: str, namespace: str = "") -> Keys:
    """The keys of a (validated) queue name, each starting ``<namespace>:`` when given."""
    parts = ("ready", "delayed", "seq", "dead", "consumers", "held:")
    start = f"{namespace}:" if namespace else ""
    ready, delayed, seq, dead, consumers, held = (
        f"{start}conveyor:{{{queue}}}:{p}".encode() for p in parts
    )
    return Keys(ready, delayed, seq, dead, consumers, held)


_LUA = files("conveyor.transports.redis").joinpath("lua")
_STANDALONE = {"ack"}  # needs nothing of common.lua
NAMES = (
    "fetch",
    "heartbeat",
    "publish_delayed",
    "ack",
    "settle",
    "release",
    "size",
    "counts",
    "purge",
    "purge_dead",
    "delete",
    "replay",
)


def _load() -> dict[str, str]:
    constants = f"local MAX_REASON = '{MAX_DELIVERIES_REASON}'\nlocal MAGIC = '{MAGIC.decode()}'\n"
    common = constants + _LUA.joinpath("common.lua").read_text(encoding="utf-8")
    return {
        name: ("" if name in _STANDALONE else common)
        + _LUA.joinpath(f"{name}.lua").read_text(encoding="utf-8")
        for name in NAMES
    }


SCRIPTS = _load()
"""Script name -> Lua source, as RedisLink registers them."""
