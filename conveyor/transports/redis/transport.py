"""The Redis transport (``redis://`` and ``rediss://``), built on redis-py and Lua scripts.

    redis://[user[:password]@]host[:port][;host2[:port]...][/db][?lease_timeout=30&...]

Design (scripts.py holds the key layout and the scripts, conveyor.clients.redis the
connection):

* Fetch is one script: it renews this consumer's lease, returns the holdings of consumers
  whose lease lapsed, promotes due delayed messages and moves up to k ready messages into
  this consumer's held list, atomically. Nothing is popped and then bookkept.
* When nothing is ready, fetch blocks in BLMOVE (ready -> held, also atomic) for at most
  the time to the next due delayed message, the caller's timeout, or half a second (so a
  delayed message published meanwhile by someone else is promoted in time).
* Leases follow liveness: a heartbeat thread renews this transport's lease every
  lease_timeout / 3 for as long as the transport lives, however long a task runs. A killed
  consumer stops renewing; the next fetch by anyone returns what it held, count raised.
* A reply lost to a broken connection (fetch, ack, nack) leaves the held list unknown; the
  transport remembers what it handed out, and its next fetch on that queue returns the
  strays. Deliveries the caller still holds stay held.
* Failover: ``;``-separated hosts are tried in order on connect, and again after a
  connection error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any, cast

import redis

from conveyor.clients.redis import RedisLink, RedisOptions
from conveyor.core import envelope
from conveyor.core.envelope import MAGIC
from conveyor.core.errors import (
    BrokerUnavailable,
    ConnectionLost,
    ConveyorError,
    DecodeError,
    LeaseLost,
)
from conveyor.core.message import DeadLetter, Delivery, Message
from conveyor.core.names import validate_queue_name
from conveyor.core.transport import (
    Capabilities,
    QueueCounts,
    SameServer,
    Subscription,
    Transport,
    TransportOptions,
)
from conveyor.core.url import URL
from conveyor.transports.redis.same_server import RedisSameServer
from conveyor.transports.redis.scripts import SCRIPTS, Keys, keys_for

log = logging.getLogger("conveyor.transports.redis")

BLOCK_CAP = 0.5  # longest single BLMOVE, seconds: bounds how late a delay can be seen
FETCH_CAP = 1000  # most messages one fetch takes
PUBLISH_CHUNK = 1000  # values per LPUSH


class _Heartbeat(threading.Thread):
    """Renews a transport's leases until stopped or until the transport is garbage."""

    def __init__(self, transport: RedisTransport, interval: float) -> None:
        super().__init__(name="conveyor-redis-heartbeat", daemon=True)
        self._transport = weakref.ref(transport)
        self._interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        wait = self._interval
        while not self.stopped.wait(wait):
            transport = self._transport()
            if transport is None:
                return
            try:
                transport._renew_leases()
                wait = self._interval
            except ConveyorError as exc:
                wait = min(self._interval, max(0.05, wait / 4))  # retry soon, lease is ticking
                log.warning("lease renewal failed, retrying in %.2f s: %s", wait, exc)
            del transport


class _RedisSubscription(Subscription):
    """Redis pub/sub: each message reaches the subscribers connected when it is sent, once."""

    def __init__(self, transport: RedisTransport, channel: bytes) -> None:
        self._link = link = transport.link
        self._pubsub = link.call("subscribe", lambda c: c.pubsub())
        deadline = time.monotonic() + transport.options.connect_timeout
        link.call("subscribe", lambda _: self._pubsub.subscribe(channel))
        # Wait for the confirmation, so a broadcast sent after subscribe() returns arrives.
        while time.monotonic() < deadline:
            reply = link.call("subscribe", lambda _: self._pubsub.get_message(timeout=0.1))
            if reply is not None and reply["type"] == "subscribe":
                return
        self.close()
        raise BrokerUnavailable(f"Redis did not confirm the subscription to {channel!r}")

    def get(self, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            reply = self._link.call("receive a broadcast", partial(self._next, remaining))
            if reply is not None and reply["type"] == "message":
                return _unpack(reply["data"])
            if remaining <= 0:
                return None

    def _next(self, timeout: float, _client: redis.Redis) -> dict[str, Any] | None:
        return self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)

    def close(self) -> None:
        try:
            self._pubsub.close()
        except (redis.RedisError, OSError) as exc:
            log.debug("closing a subscription: %s", exc)


def _unpack(data: bytes) -> Message:
    """An envelope; bytes that are not one come back whole as the body, flagged."""
    try:
        return envelope.unpack(data)
    except DecodeError as exc:
        return Message(body=data, headers={"conveyor-malformed": str(exc)})


class RedisTransport(Transport):
    """Redis lists + sorted sets + Lua; see the module docstring for the design."""

    Options = RedisOptions
    capabilities = Capabilities(
        max_message_size=16 * 1024 * 1024,
        priorities=False,
        broadcast=True,
        connection_cut=True,
    )
    options: RedisOptions

    def __init__(self, url: URL, options: TransportOptions) -> None:
        super().__init__(url, options)
        self.link = RedisLink(url, self.options, SCRIPTS)
        endpoint = self.link.endpoint()
        self._same_server = None if endpoint is None else RedisSameServer(self, endpoint)
        self._fetch_locks: dict[str, threading.Lock] = {}  # one fetch at a time per queue
        self._closing = False  # set by close(): a blocked fetch gives up at its next turn
        self._state_lock = threading.Lock()
        self._keys: dict[str, Keys] = {}
        self._reset_consumer()

    def _reset_consumer(self) -> None:
        """A fresh consumer identity: at construction, and in a forked child."""
        self._pid = os.getpid()
        self._consumer = uuid.uuid4().hex.encode()
        self._lease_ms = int(self.options.lease_timeout * 1000)
        self._handed: dict[str, dict[bytes, int]] = {}  # queue -> element -> times handed out
        self._strays: set[str] = set()  # queues whose held list a lost reply left unknown
        self._heartbeat: _Heartbeat | None = None

    def _queue_keys(self, queue: str) -> Keys:
        keys = self._keys.get(queue)
        if keys is None:
            validate_queue_name(queue)
            keys = self._keys[queue] = keys_for(queue, self.options.namespace)
        return keys

    def _held(self, keys: Keys) -> bytes:
        """This consumer's held list in the queue of `keys`."""
        return keys.held_prefix + self._consumer

    # -- producing -------------------------------------------------------------------

    def publish_many(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        packed = self.check_publish(queue, messages)
        if not packed:
            return
        keys = self._queue_keys(queue)
        if delay > 0:
            self.link.run(
                f"publish to {queue!r}",
                "publish_delayed",
                keys.common(),
                [int(delay * 1000), *packed],
            )
            return

        what = f"publish to {queue!r}"
        chunks = [
            ("LPUSH", keys.ready, *packed[start : start + PUBLISH_CHUNK])
            for start in range(0, len(packed), PUBLISH_CHUNK)
        ]
        for reply in self.link.send_all(what, chunks):
            if isinstance(reply, Exception):
                raise self.link.translate(reply, what)

    def publish_command(self, queue: str, message: Message) -> tuple[Any, ...]:
        """The Redis command that publishes `message` (no delay), for `link.send_all` beside
        another component's commands on this transport's server (same_server.py).
        Validation and size errors raise here, before any I/O."""
        (packed,) = self.check_publish(queue, (message,))
        return ("LPUSH", self._queue_keys(queue).ready, packed)

    def same_server(self) -> SameServer | None:
        """A result backend on this Redis database stores beside the publish (None with
        several hosts: which one answers is known only after connecting)."""
        return self._same_server

    # -- consuming -------------------------------------------------------------------

    def fetch(self, queue: str, *, max_messages: int = 1, timeout: float = 1.0) -> list[Delivery]:
        keys = self._queue_keys(queue)
        want = min(max_messages, FETCH_CAP)
        if want < 1:
            return []
        deadline = time.monotonic() + timeout
        with self._fetch_locks.setdefault(queue, threading.Lock()):
            self._join(queue, keys)
            try:
                items = self._take(queue, keys, want, deadline)
            except ConnectionLost:
                self._strays.add(queue)  # the script or BLMOVE may have run
                raise
            return self._deliver(queue, keys, items)  # under the lock: see _reconcile

    def _take(self, queue: str, keys: Keys, want: int, deadline: float) -> list[bytes]:
        args = [self._consumer, want, self._lease_ms, self.options.max_deliveries, keys.held_prefix]
        held = self._held(keys)
        script_keys = [*keys.common(), held]
        what = f"fetch from {queue!r}"
        while True:
            reply = self.link.run(what, "fetch", script_keys, args)
            if len(reply) > 1:
                return reply[1:]
            remaining = deadline - time.monotonic()
            if remaining <= 0.001 or self._closing:
                return []
            block = min(remaining, BLOCK_CAP)
            if reply[0] >= 0:
                block = max(0.001, min(block, reply[0] / 1000))
            item = self.link.call(what, partial(_blmove, keys.ready, held, block))
            if item is not None:
                if want == 1:
                    return [item]
                args[1] = want - 1
                more = self.link.run(what, "fetch", script_keys, args)
                return [item, *more[1:]]

    def _deliver(self, queue: str, keys: Keys, items: list[bytes]) -> list[Delivery]:
        deliveries, malformed = [], []
        unpack = envelope.unpack
        for item in items:
            count, data = (1, item) if item.startswith(MAGIC) else _split(item)
            try:
                message = unpack(data)
            except DecodeError as exc:
                malformed.append((item, f"malformed message: {exc}"))
                continue
            deliveries.append(Delivery(self, queue, message, count, item))
        with self._state_lock:
            handed = self._handed.setdefault(queue, {})
            for delivery in deliveries:
                handed[delivery.tag] = handed.get(delivery.tag, 0) + 1
        for item, reason in malformed:
            self._settle(queue, keys, item, requeue=False, delay=0.0, reason=reason)
        return deliveries

    def _join(self, queue: str, keys: Keys) -> None:
        """Start the heartbeat (and, in a forked child, become a new consumer)."""
        with self._state_lock:
            if self._pid != os.getpid():
                self._reset_consumer()
            if self._heartbeat is None or not self._heartbeat.is_alive():
                self._heartbeat = _Heartbeat(self, self.options.lease_timeout / 3)
                self._heartbeat.start()
            self._handed.setdefault(queue, {})
        if queue in self._strays:
            self._reconcile(queue, keys)

    def _reconcile(self, queue: str, keys: Keys) -> None:
        """Return what the held list has beyond what was handed out: a lost reply's strays.

        Runs under the queue's fetch lock, and fetches record what they hand out before
        releasing it, so nothing in flight looks like a stray.
        """
        self._strays.discard(queue)
        held = self._held(keys)
        try:
            listed = self.link.call("reconcile", partial(_lrange, held, 0, -1))
            with self._state_lock:
                known = dict(self._handed[queue])
            strays = []
            for item in listed:
                if known.get(item, 0) > 0:
                    known[item] -= 1
                else:
                    strays.append(item)
            if strays:
                args = [self._consumer, self.options.max_deliveries, *strays]
                self.link.run("reconcile", "release", [*keys.common(), held], args)
        except ConveyorError:
            self._strays.add(queue)
            raise

    def _forget(self, queue: str, tags: Iterable[bytes], lost: bool) -> None:
        """Settled (or, when `lost`, of unknown fate: the next fetch reconciles)."""
        with self._state_lock:
            handed = self._handed.get(queue)
            if handed is not None:
                for tag in tags:
                    left = handed.pop(tag, 0) - 1
                    if left > 0:
                        handed[tag] = left
            if lost:
                self._strays.add(queue)

    def _renew_leases(self) -> None:
        for queue in list(self._handed):
            keys = self._queue_keys(queue)
            script_keys = [*keys.common(), self._held(keys)]
            self.link.run("renew lease", "heartbeat", script_keys, [self._consumer, self._lease_ms])

    def ack(self, delivery: Delivery) -> None:
        self.ack_batch([delivery])

    def ack_batch(self, deliveries: list[Delivery]) -> None:
        """One script call per queue removes the whole batch from the held list."""
        by_queue: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            by_queue.setdefault(delivery.queue, []).append(delivery)
        lost: list[str] = []
        for queue, group in by_queue.items():
            tags = [d.tag for d in group]
            held = self._held(self._queue_keys(queue))
            removed: list[int] = []
            try:
                removed = self.link.run(f"ack on {queue!r}", "ack", [held], tags)
            finally:
                self._forget(queue, tags, lost=not removed)
            lost += [d.message.id for d, n in zip(group, removed, strict=True) if not n]
        if lost:
            raise LeaseLost(f"messages {', '.join(lost)} are no longer held by this consumer")

    def nack(self, delivery: Delivery, *, requeue: bool, delay: float, reason: str) -> None:
        queue = delivery.queue
        keys = self._queue_keys(queue)
        if not self._settle(queue, keys, delivery.tag, requeue=requeue, delay=delay, reason=reason):
            raise LeaseLost(f"message {delivery.message.id} is no longer held by this consumer")

    def _settle(
        self, queue: str, keys: Keys, item: bytes, *, requeue: bool, delay: float, reason: str
    ) -> bool:
        held = self._held(keys)
        args = [item, 1 if requeue else 0, int(delay * 1000), reason, self.options.max_deliveries]
        done = False
        try:
            done = bool(self.link.run(f"nack on {queue!r}", "settle", [*keys.common(), held], args))
        finally:
            self._forget(queue, (item,), lost=not done)
        return done

    # -- administration -------------------------------------------------------------

    def size(self, queue: str) -> int:
        return int(
            self.link.run(f"size of {queue!r}", "size", self._queue_keys(queue).common(), [])
        )

    def purge(self, queue: str) -> int:
        return int(self.link.run(f"purge {queue!r}", "purge", self._queue_keys(queue).common(), []))

    def counts(self, queue: str) -> QueueCounts:
        keys = self._queue_keys(queue)
        ready, delayed, held, dead, oldest = self.link.run(
            f"counts of {queue!r}", "counts", keys.common(), [keys.held_prefix]
        )
        age = None
        if oldest:  # the publish time in the oldest ready message's envelope
            age = max(0.0, time.time() - _unpack(_split(oldest)[1]).timestamp)
        return QueueCounts(int(ready), int(delayed), int(held), int(dead), age)

    def purge_dead_letters(self, queue: str) -> int:
        keys = self._queue_keys(queue).common()
        return int(self.link.run(f"purge dead letters of {queue!r}", "purge_dead", keys, []))

    def delete(self, queue: str) -> None:
        keys = self._queue_keys(queue)
        self.link.run(f"delete {queue!r}", "delete", keys.common(), [keys.held_prefix])

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        keys = self._queue_keys(queue)
        if limit < 1:
            return []
        entries = self.link.call(
            f"list dead letters of {queue!r}", partial(_lrange, keys.dead, 0, limit - 1)
        )
        return [_dead_letter(queue, entry) for entry in entries]

    def replay_dead_letters(self, queue: str, *, ids: Iterable[str] | None = None) -> int:
        keys = self._queue_keys(queue)
        what = f"replay dead letters of {queue!r}"
        if ids is None:
            return int(self.link.run(what, "replay", keys.common(), []))
        wanted = set(ids)
        entries = self.link.call(what, partial(_lrange, keys.dead, 0, -1))
        chosen = [e for e in entries if _dead_letter(queue, e).message.id in wanted]
        if not chosen:
            return 0
        return int(self.link.run(what, "replay", keys.common(), chosen))

    # -- broadcast -------------------------------------------------------------------

    def broadcast(self, channel: str, message: Message) -> None:
        data = self.check_publish(channel, (message,))[0]
        self.link.call(
            f"broadcast on {channel!r}",
            lambda c: c.publish(_channel_key(channel, self.options.namespace), data),
        )

    def subscribe(self, channel: str) -> Subscription:
        validate_queue_name(channel)
        return _RedisSubscription(self, _channel_key(channel, self.options.namespace))

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Stop renewing leases and return what this transport holds, counts raised.

        A fetch blocked in another thread returns within BLOCK_CAP; what it took is returned
        too. If Redis cannot be reached the holdings come back when the lease lapses.
        """
        self._closing = True
        with contextlib.ExitStack() as fetches_done:
            for lock in list(self._fetch_locks.values()):
                fetches_done.enter_context(lock)
            heartbeat, self._heartbeat = self._heartbeat, None
            if heartbeat is not None:
                heartbeat.stopped.set()
                heartbeat.join(timeout=5)
            if self._pid == os.getpid() and self.link.connected:
                for queue in list(self._handed):
                    self._release_all(queue)
            self._handed.clear()
            self._strays.clear()
            self.link.close()
            self._closing = False

    def _release_all(self, queue: str) -> None:
        keys = self._queue_keys(queue)
        try:
            self.link.run(
                f"release holdings on {queue!r}",
                "release",
                [*keys.common(), self._held(keys)],
                [self._consumer, self.options.max_deliveries],
            )
        except ConveyorError as exc:
            log.warning("close: %s; they come back when the lease lapses", exc)


def _lrange(key: bytes, start: int, stop: int, client: redis.Redis) -> list[bytes]:
    return cast("list[bytes]", client.lrange(key, start, stop))


def _blmove(source: bytes, target: bytes, timeout: float, client: redis.Redis) -> bytes | None:
    reply = client.execute_command("BLMOVE", source, target, "RIGHT", "LEFT", timeout)
    return cast("bytes | None", reply)


def _channel_key(channel: str, namespace: str) -> bytes:
    start = f"{namespace}:" if namespace else ""
    return f"{start}conveyor:broadcast:{{{channel}}}".encode()


def _dead_letter(queue: str, entry: bytes) -> DeadLetter:
    """Parse ``<ms>:<len>:<reason><count>:<envelope>``."""
    a = entry.index(b":")
    b = entry.index(b":", a + 1)
    start = b + 1
    end = start + int(entry[a + 1 : b])
    count, data = _split(entry[end:])
    return DeadLetter(
        message=_unpack(data),
        queue=queue,
        reason=entry[start:end].decode("utf-8", "replace"),
        dead_at=int(entry[:a]) / 1000,
        delivery_count=count,
    )


def _split(element: bytes) -> tuple[int, bytes]:
    """An element's delivery count and envelope; a bare envelope counts 1."""
    if not element.startswith(MAGIC):
        count, colon, data = element.partition(b":")
        if colon and count.isdigit():
            return int(count), data
    return 1, element
