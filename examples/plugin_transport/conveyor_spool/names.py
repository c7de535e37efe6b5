"""How a spooled message file is named: the name carries everything the transport sorts on.

    <when:020d>.<token>.<deliveries>

when        nanoseconds since the epoch. In a queue's ``queued/`` directory it is the time
            the message becomes due; in ``dead/`` it is the time it was dead-lettered. It
            is zero-padded, so sorting names sorts by time: due order is name order.
token       random hex, fixed at publish: makes the name unique across processes and lets
            a requeued message keep its identity.
deliveries  how many times the message has been delivered. Claiming a message renames it
            with the count raised, so the count survives a crash with no other bookkeeping.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import NamedTuple

_clock_lock = threading.Lock()
_last_stamp = 0


def stamp(delay: float = 0.0) -> int:
    """Now (plus `delay` seconds) in nanoseconds, strictly increasing within this process.

    Two publishes from one process never share a stamp and never go backwards when the
    wall clock does, so one producer's messages keep their publish order.
    """
    global _last_stamp
    with _clock_lock:
        _last_stamp = max(time.time_ns(), _last_stamp + 1)
        now = _last_stamp
    return now + round(delay * 1e9)


class Entry(NamedTuple):
    when: int
    token: str
    deliveries: int

    @classmethod
    def new(cls, delay: float) -> Entry:
        return cls(stamp(delay), secrets.token_hex(8), 0)

    @classmethod
    def parse(cls, name: str) -> Entry:
        when, token, deliveries = name.split(".")
        return cls(int(when), token, int(deliveries))

    @property
    def name(self) -> str:
        return f"{self.when:020d}.{self.token}.{self.deliveries}"
