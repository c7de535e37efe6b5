"""Where the ZooKeeper transport keeps things, and how entry names and dead letters encode.

Under the URL's root path (``zookeeper://host/root``, default ``/conveyor``)::

    queues/<queue>/e/m<priority>_<due ms>_<base count>_<sequence>   one entry per message
    queues/<queue>/l/<entry name>                                   ephemeral lock of a taker
    queues/<queue>/d/d_<sequence>                                   dead letters
    channels/<channel>/s/<subscriber id>                            ephemeral subscriber mark
    channels/<channel>/i/<subscriber id>/b_<sequence>               a subscriber's inbox

An entry's data is the packed envelope, untouched. Its delivery count is the base count in
its name plus its data version: every take rewrites the data with a versioned set, so the
version also proves, at ack time, that nobody took the entry since.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import NamedTuple

from conveyor.core.errors import DecodeError

ENTRY_PREFIX = "m"
DEAD_PREFIX = "d_"
INBOX_PREFIX = "b_"
REASON_LIMIT = 2000
_HEAD = struct.Struct(">I")


@dataclass(frozen=True)
class QueuePaths:
    root: str
    entries: str
    locks: str
    dead: str

    @classmethod
    def of(cls, root: str, queue: str) -> QueuePaths:
        base = f"{root}/queues/{queue}"
        return cls(base, f"{base}/e", f"{base}/l", f"{base}/d")

    def entry(self, name: str) -> str:
        return f"{self.entries}/{name}"

    def lock(self, name: str) -> str:
        return f"{self.locks}/{name}"


@dataclass(frozen=True)
class ChannelPaths:
    root: str
    subscribers: str
    inboxes: str

    @classmethod
    def of(cls, root: str, channel: str) -> ChannelPaths:
        base = f"{root}/channels/{channel}"
        return cls(base, f"{base}/s", f"{base}/i")


class EntryName(NamedTuple):
    """A parsed entry name. Sorting gives delivery order: priority first, then the time the
    entry became deliverable (its due time: the publish time, or when its delay ends), then
    publish order. So delays that are all due arrive in due-time order.

    A tuple, so that sorting a long listing compares in C.
    """

    sort_priority: int  # the negated priority, so that higher priorities sort first
    due_ms: int
    sequence: int
    base: int
    name: str

    @property
    def priority(self) -> int:
        return -self.sort_priority

    @staticmethod
    def prefix(priority: int, due_ms: int, base: int) -> str:
        """The name handed to a sequential create; ZooKeeper appends the sequence."""
        return f"{ENTRY_PREFIX}{priority}_{due_ms}_{base}_"

    @classmethod
    def parse(cls, name: str) -> EntryName | None:
        """The parsed name, or None for a node that is not an entry."""
        try:
            priority, due, base, sequence = name[len(ENTRY_PREFIX) :].split("_")
            return cls(-int(priority), int(due), int(sequence), int(base), name)
        except ValueError:
            return None


def sequence_of(name: str) -> int:
    """The sequence ZooKeeper appended to a sequential node's name (10 digits)."""
    return int(name[-10:])


def pack_dead(envelope: bytes, reason: str, dead_at: float, count: int) -> bytes:
    """A dead letter's data: length-prefixed JSON (reason, time, count), then the envelope."""
    head = json.dumps({"r": reason[:REASON_LIMIT], "t": dead_at, "n": count}).encode()
    return _HEAD.pack(len(head)) + head + envelope


def unpack_dead(data: bytes) -> tuple[bytes, str, float, int]:
    """(envelope, reason, dead_at, count) from `pack_dead` bytes."""
    try:
        (length,) = _HEAD.unpack_from(data)
        end = _HEAD.size + length
        head = json.loads(data[_HEAD.size : end])
        return bytes(data[end:]), str(head["r"]), float(head["t"]), int(head["n"])
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise DecodeError(f"malformed dead letter: {exc}") from None
