"""The transport contract. testing/CONFORMANCE.md lists the clauses; conveyor.testing proves them.

A transport moves opaque messages between producers and consumers through one broker:

* `publish_many` returns only once the broker has durably accepted every message.
* Delays wait in the broker and become deliverable at their due time, in due order.
* `fetch` blocks on the broker's own primitive and returns at most `max_messages`.
* Each delivery carries a delivery count; `ack` is final; `nack` requeues (optionally
  after a delay) or dead-letters with a reason; going past `max_deliveries` dead-letters
  with the reason "max deliveries".
* Leases follow liveness: a live consumer keeps what it holds however long it works; a
  dead consumer's messages come back within `lease_timeout` with the count raised.
* `ack`/`nack` may be called from any thread.
* Client-library exceptions never escape: they become conveyor errors.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ClassVar

from conveyor.core import envelope
from conveyor.core.errors import ConfigurationError, MessageTooLarge, Unsupported
from conveyor.core.message import DeadLetter, Delivery, Message, check_headers
from conveyor.core.names import validate_queue_name
from conveyor.core.url import URL

MAX_DELIVERIES_REASON = "max deliveries"
NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


def check_namespace(namespace: str) -> None:
    """The `namespace` option of transports and result backends ("" means none)."""
    if namespace and not NAMESPACE.fullmatch(namespace):
        raise ConfigurationError(
            f"namespace {namespace!r}: a letter, then up to 31 letters, digits or '_'"
        )


def namespace_of(url: URL, inherited: str) -> str:
    """The namespace of a store at `url`: its URL's own `namespace` option, else `inherited`
    (the broker URL's, so that one option prefixes everything the app creates); checked."""
    namespace = str(url.options.get("namespace") or inherited or "")
    check_namespace(namespace)
    return namespace


@dataclass(frozen=True)
class Capabilities:
    """What a transport declares about itself; the conformance suite reads it.

    A clause whose capability is missing reports "n/a" with the reason, never a pass.
    crosses_processes: consumers in other processes share the queues (memory: no).
    networked: connects over TCP, so refused ports and unknown hosts apply.
    authenticates: the server checks credentials given in the URL.
    connection_cut: consumers and producers survive connections cut by a TCP proxy.
    pipelined_confirms: `publish_pipelined` writes at once and confirms later (core/pipeline.py);
        without it, the default `publish_pipelined` publishes and waits, like `publish_many`.
    """

    max_message_size: int
    priorities: bool = False
    broadcast: bool = False
    crosses_processes: bool = True
    networked: bool = True
    authenticates: bool = True
    connection_cut: bool = False
    pipelined_confirms: bool = False


@dataclass
class TransportOptions:
    """Options every transport understands, settable from the URL query string.

    lease_timeout: seconds after which a dead consumer's messages come back.
    max_deliveries: deliveries before a message is dead-lettered ("max deliveries").
    connect_timeout: seconds to wait for a connection before BrokerUnavailable.
    namespace: a prefix every broker object the transport creates starts with (queues,
        dead-letter queues, delay exchanges, broadcast exchanges, keys, tables, paths), so
        apps share a broker without seeing each other and broker ACLs can match the prefix.
        A letter, then up to 31 letters, digits or '_'; empty (the default) for none.
    """

    lease_timeout: float = 30.0
    max_deliveries: int = 5
    connect_timeout: float = 5.0
    namespace: str = ""

    def validate(self) -> None:
        check_namespace(self.namespace)
        if self.lease_timeout <= 0:
            raise ConfigurationError("lease_timeout must be positive")
        if self.max_deliveries < 1:
            raise ConfigurationError("max_deliveries must be at least 1")
        if self.connect_timeout <= 0:
            raise ConfigurationError("connect_timeout must be positive")


@dataclass(frozen=True)
class QueueCounts:
    """A snapshot of one queue for monitoring (not read atomically on every broker).

    ready: deliverable now. delayed: waiting for their due time. held: delivered and not
    yet settled. dead: in the dead-letter queue. oldest_age: seconds the oldest ready
    message has waited. None: this transport cannot count it.
    """

    ready: int
    delayed: int | None = None
    held: int | None = None
    dead: int | None = None
    oldest_age: float | None = None


COUNT_LIMIT = 10_000  # dead letters listed to count them, where a transport cannot count


class Subscription(ABC):
    """A live subscription to a broadcast channel (capability `broadcast`)."""

    @abstractmethod
    def get(self, timeout: float) -> Message | None:
        """The next broadcast message, or None after `timeout` seconds."""

    @abstractmethod
    def close(self) -> None: ...


class SameServer(ABC):
    """A transport's offer (`Transport.same_server`): another component's commands for the
    transport's server, sent in the same round trip as a publish.

    Its use: a result backend whose records live on the broker's server stores a task's
    PENDING record in the write that publishes the task (`ResultBackend.store_pending_beside`),
    one round trip instead of two. `endpoint` names the server and database, compared with
    ``==`` and known without I/O; a component whose data lives elsewhere ignores the offer.
    The commands are in the server's own protocol, so only a component written for that
    server uses it.
    """

    endpoint: object

    @abstractmethod
    def publish_after(
        self, commands: Sequence[tuple[Any, ...]], queue: str, message: Message
    ) -> list[Any]:
        """Send `commands`, then publish `message` to `queue` (no delay), in one round trip;
        return the replies to `commands`, an error reply as its exception in its place.

        The publish's own errors raise as `publish` would raise them. A lost connection
        raises BrokerUnavailable (or ConnectionLost): any of it may have run, so the caller
        sends both again on its general path, the message keeping its id as in any retry.
        """


class Transport(ABC):
    """One broker connection (or pool) used by producers and consumers alike.

    Subclasses set `capabilities` on the class (or on the instance in `__init__`, when
    the URL decides, as with SQL's dialect) and, when they take extra URL options, `Options`.
    """

    Options: ClassVar[type[TransportOptions]] = TransportOptions
    capabilities: Capabilities

    def __init__(self, url: URL, options: TransportOptions) -> None:
        self.url = url
        self.options = options

    # -- producing -------------------------------------------------------------------

    @abstractmethod
    def publish_many(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        """Durably enqueue `messages` in order, deliverable after `delay` seconds."""

    def publish(self, queue: str, message: Message, *, delay: float = 0.0) -> None:
        """Durably enqueue one message, deliverable after `delay` seconds."""
        self.publish_many(queue, (message,), delay=delay)

    def publish_pipelined(
        self, queue: str, messages: Sequence[Message], *, delay: float = 0.0
    ) -> Future[None]:
        """Write `messages` now; the Future completes once the broker durably accepted all of
        them, or fails with a conveyor error (BrokerError for a refusal, ConnectionLost when the
        connection went with the confirm outstanding: the outcome is unknown).

        Errors found before any I/O (a bad queue name, a message too large) raise here. This
        default publishes and waits, so the Future is done on return; a transport that declares
        `pipelined_confirms` returns before the broker has answered.
        """
        self.publish_many(queue, messages, delay=delay)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    # -- consuming -------------------------------------------------------------------

    @abstractmethod
    def fetch(self, queue: str, *, max_messages: int = 1, timeout: float = 1.0) -> list[Delivery]:
        """Up to `max_messages` deliveries, waiting at most `timeout` seconds for the first."""

    @abstractmethod
    def ack(self, delivery: Delivery) -> None:
        """Remove the delivered message for good. Called through `Delivery.ack`."""

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Ack every delivery, settling each; one round trip where the transport batches."""
        Delivery.ack_all(deliveries, self.ack_batch)

    def ack_batch(self, deliveries: list[Delivery]) -> None:
        """Remove several delivered messages for good. Override to batch the round trips."""
        for delivery in deliveries:
            self.ack(delivery)

    @abstractmethod
    def nack(self, delivery: Delivery, *, requeue: bool, delay: float, reason: str) -> None:
        """Requeue (after `delay`) or dead-letter with `reason`. Called through `Delivery.nack`."""

    # -- administration -------------------------------------------------------------

    @abstractmethod
    def size(self, queue: str) -> int:
        """The number of ready messages (not delayed, not held, not dead)."""

    @abstractmethod
    def purge(self, queue: str) -> int:
        """Remove the ready messages; return how many were removed."""

    @abstractmethod
    def delete(self, queue: str) -> None:
        """Remove the queue with its ready, delayed and dead messages."""

    @abstractmethod
    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        """The oldest `limit` dead letters of `queue`."""

    @abstractmethod
    def replay_dead_letters(self, queue: str, *, ids: Iterable[str] | None = None) -> int:
        """Move dead letters (all, or those with `ids`) back to the queue; return the count."""

    # -- monitoring ------------------------------------------------------------------

    def counts(self, queue: str) -> QueueCounts:
        """Ready, delayed, held and dead counts of `queue` (see QueueCounts). This default
        knows ready and dead (up to COUNT_LIMIT); transports that can count more override it."""
        dead = len(self.dead_letters(queue, limit=COUNT_LIMIT))
        return QueueCounts(self.size(queue), dead=dead)

    def purge_dead_letters(self, queue: str) -> int:
        """Remove the queue's dead letters; return how many were removed."""
        raise Unsupported(f"{type(self).__name__} cannot purge dead letters")

    # -- broadcast (capability) ------------------------------------------------------

    def broadcast(self, channel: str, message: Message) -> None:
        """Deliver `message` once to every live subscriber of `channel`."""
        raise Unsupported(f"{type(self).__name__} does not support broadcast")

    def subscribe(self, channel: str) -> Subscription:
        """Subscribe to broadcasts on `channel`."""
        raise Unsupported(f"{type(self).__name__} does not support broadcast")

    # -- commands on the same server (capability) ------------------------------------

    def same_server(self) -> SameServer | None:
        """This transport's SameServer offer, or None (the default): see SameServer."""
        return None

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Release connections. Unacked deliveries come back to the queue."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # -- helpers for implementations --------------------------------------------------

    def check_publish(self, queue: str, messages: Sequence[Message]) -> list[bytes]:
        """Validate the queue name, sizes and header counts before any I/O; return the
        packed envelopes.

        Transports that store one opaque value per message send these bytes as they are.
        """
        validate_queue_name(queue)
        limit = self.capabilities.max_message_size
        packed = [envelope.pack(message) for message in messages]
        for message, data in zip(messages, packed, strict=True):
            check_headers(message)
            if len(data) > limit:
                raise MessageTooLarge(
                    f"message {message.id} is {len(data)} bytes, over {type(self).__name__}'s "
                    f"limit of {limit} bytes; nothing was sent"
                )
        return packed
