"""Names and arguments of the RabbitMQ objects behind one conveyor queue.

For a queue ``q`` (names pass conveyor's validator, and ``conveyor.`` is reserved there,
so these never collide with user queues); with the transport's ``namespace`` option every
name below starts with ``<namespace>.``, the broadcast exchange ``conveyor.broadcast`` too:

* ``q``: durable, classic (with ``x-max-priority``) or quorum.
* ``conveyor.dlq.q``: its dead letters, a durable classic queue.
* ``conveyor.due.q``: a fanout exchange bound to ``q``, where delayed messages land.
* ``conveyor.delay.q.<ms>``: one queue per distinct delay. Every message in it has the same
  TTL, so they expire in arrival order, and a short delay never waits behind a long one in
  another delay queue. Expired messages are dead-lettered to ``conveyor.due.q``. Unused delay
  queues disappear after their TTL plus a minute (``x-expires``).

Deleting ``q`` deletes ``conveyor.due.q`` too, so delayed messages that come due afterwards
are dropped by the broker instead of reappearing. AMQP cannot list queues, so `delete`
removes the delay queues its own transport published to; others expire on their own. One
window stays: if ``q`` gets a new delayed message before an old one comes due, the due
exchange exists again and the old one lands in the new ``q``. Publishers redeclare the due
exchange with each delay queue (every ``DELAY_QUEUE_REFRESH`` s), so one that missed a
delete by another process stops publishing into a dead end within that time.
"""

from __future__ import annotations

import math
from typing import Any

from conveyor.core.errors import Unsupported

DELAY_QUEUE_GRACE_MS = 60_000
# A delay queue is redeclared (renewing its x-expires) when its last declaration is older:
# any message published to it is then due well before the queue can expire.
DELAY_QUEUE_REFRESH = 10.0
_FINE_LIMIT_MS = 100_000
# x-message-ttl and x-expires are unsigned 32-bit milliseconds (2**32 - 1 is about 49.7
# days); this delay's bucket plus the grace still fits.
MAX_DELAY = 4_290_000


def _start(namespace: str) -> str:
    return f"{namespace}." if namespace else ""


def queue_name(queue: str, namespace: str = "") -> str:
    """The broker's name of conveyor queue `queue`: itself, after ``<namespace>.`` if set."""
    return f"{_start(namespace)}{queue}"


def dead_letter_queue(queue: str, namespace: str = "") -> str:
    return f"{_start(namespace)}conveyor.dlq.{queue}"


def due_exchange(queue: str, namespace: str = "") -> str:
    return f"{_start(namespace)}conveyor.due.{queue}"


def delay_queue(queue: str, delay_ms: int, namespace: str = "") -> str:
    return f"{_start(namespace)}conveyor.delay.{queue}.{delay_ms}"


def broadcast_exchange(namespace: str = "") -> str:
    return f"{_start(namespace)}conveyor.broadcast"


def delay_bucket(delay: float) -> int:
    """`delay` seconds as whole milliseconds, rounded UP so nothing is delivered early.

    Up to 100 s the step is 10 ms; beyond, three significant digits (at most 1% late),
    which bounds how many distinct delay queues jittered retry delays can create.
    """
    if delay > MAX_DELAY:
        raise Unsupported(
            f"a delay of {delay:.0f} s is over RabbitMQ's TTL limit; the AMQP transport "
            f"delays messages by at most {MAX_DELAY} s (about 49 days)"
        )
    ms = math.ceil(delay * 1000)
    step = 10 if ms <= _FINE_LIMIT_MS else 10 ** (len(str(ms)) - 3)
    return -(-ms // step) * step


def queue_arguments(queue_type: str, max_priority: int) -> dict[str, Any]:
    if queue_type == "quorum":
        return {"x-queue-type": "quorum"}
    arguments: dict[str, Any] = {"x-queue-type": "classic"}
    if max_priority:
        arguments["x-max-priority"] = max_priority
    return arguments


DEAD_LETTER_ARGUMENTS: dict[str, Any] = {"x-queue-type": "classic"}


def delay_arguments(queue: str, delay_ms: int, namespace: str = "") -> dict[str, Any]:
    return {
        "x-queue-type": "classic",
        "x-message-ttl": delay_ms,
        "x-dead-letter-exchange": due_exchange(queue, namespace),
        "x-expires": delay_ms + DELAY_QUEUE_GRACE_MS,
    }
