"""SpoolTransport: a queue in a directory, shared by every process on one machine, no server.

    <root>/tmp/                           staging: files are written here, then renamed in
    <root>/queues/<queue>/queued/<name>   waiting messages, due or not yet due (see names.py)
    <root>/queues/<queue>/dead/<name>     dead letters, each with a <name>.reason file
    <root>/consumers/<id>/.lock           flocked by consumer <id> for as long as it lives
    <root>/consumers/<id>/<queue>/<name>  the messages consumer <id> holds

With the `namespace` option the same layout is under ``<root>/<namespace>/``.

Every state change is one atomic ``os.rename`` of a message file, so there is no lock to
take and no index to keep in step: the file system is the broker. Two consumers renaming
the same file cannot both succeed, so a message is never handed out twice.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import takewhile
from typing import ParamSpec, TypeVar

from conveyor.core import envelope
from conveyor.core.errors import BrokerError, BrokerUnavailable, ConfigurationError, LeaseLost
from conveyor.core.message import DeadLetter, Delivery, Message
from conveyor.core.names import validate_queue_name
from conveyor.core.url import URL
from conveyor.transports.base import (
    MAX_DELIVERIES_REASON,
    Capabilities,
    Transport,
    TransportOptions,
)
from conveyor_spool.files import fsync_directory, names, read, write_atomic
from conveyor_spool.lease import LOCK, Lease, reap
from conveyor_spool.names import Entry, stamp

REASON = ".reason"
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class SpoolOptions(TransportOptions):
    """The common options, plus ``poll_interval`` (``spool:///dir?poll_interval=0.02``):
    seconds between looks at a queue with nothing due. It bounds both the idle CPU (one
    directory listing per look) and the extra latency of a new message."""

    poll_interval: float = 0.05

    def validate(self) -> None:
        super().validate()
        if self.poll_interval <= 0:
            raise ConfigurationError("poll_interval must be positive")


def _os_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn OSError into BrokerError: for this transport the 'client library' is the OS."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            raise BrokerError(f"spool {method.__name__} failed: {exc}") from exc

    return wrapper


def _move(source: str, directory: str, name: str) -> None:
    os.makedirs(directory, exist_ok=True)
    os.rename(source, os.path.join(directory, name))


class SpoolTransport(Transport):
    """A directory-backed queue for processes on one machine (``spool:///absolute/dir``)."""

    Options = SpoolOptions
    capabilities = Capabilities(
        max_message_size=16 * 1024 * 1024, networked=False, authenticates=False
    )
    options: SpoolOptions

    def __init__(self, url: URL, options: TransportOptions) -> None:
        super().__init__(url, options)
        if url.hosts or not os.path.isabs(url.path):
            raise ConfigurationError(
                f"{url}: a spool URL names an absolute directory and no host, "
                "e.g. spool:///var/spool/conveyor"
            )
        # With a namespace, the whole layout lives in <root>/<namespace>/ (as on ZooKeeper).
        base = os.path.join(url.path, options.namespace) if options.namespace else url.path
        self._staging = os.path.join(base, "tmp")
        self._queues = os.path.join(base, "queues")
        self._consumers = os.path.join(base, "consumers")
        try:
            for directory in (self._staging, self._queues, self._consumers):
                os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise BrokerUnavailable(f"cannot use spool directory {url.path!r}: {exc}") from exc
        self._lock = threading.Lock()
        self._lease: Lease | None = None
        self._next_reap = 0.0

    def _queued(self, queue: str) -> str:
        return os.path.join(self._queues, queue, "queued")

    def _dead(self, queue: str) -> str:
        return os.path.join(self._queues, queue, "dead")

    def _due(self, queue: str) -> list[str]:
        """Names of the messages in `queue` that are due, oldest due first."""
        now = time.time_ns()
        return list(takewhile(lambda n: Entry.parse(n).when <= now, names(self._queued(queue))))

    # -- producing -------------------------------------------------------------------

    @_os_errors
    def publish_many(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        packed = self.check_publish(queue, messages)
        queued = self._queued(queue)
        os.makedirs(queued, exist_ok=True)
        for data in packed:
            path = os.path.join(queued, Entry.new(delay).name)
            write_atomic(self._staging, path, data, fsync=True)
        fsync_directory(queued)  # publish returns only once the messages survive a crash

    # -- consuming -------------------------------------------------------------------

    @_os_errors
    def fetch(self, queue: str, *, max_messages: int = 1, timeout: float = 1.0) -> list[Delivery]:
        validate_queue_name(queue)
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() >= self._next_reap:
                # A dead consumer's messages come back within a quarter of lease_timeout.
                self._next_reap = time.monotonic() + self.options.lease_timeout / 4
                reap(self._consumers, self._staging, self._return_held)
            deliveries = self._claim(queue, max_messages)
            remaining = deadline - time.monotonic()
            if deliveries or remaining <= 0:
                return deliveries
            time.sleep(min(self.options.poll_interval, remaining))

    def _claim(self, queue: str, limit: int) -> list[Delivery]:
        due = self._due(queue)
        if not due:
            return []
        taken: list[Delivery] = []
        with self._lock:  # so that `close` cannot release the lease while we claim
            if self._lease is None or not self._lease.mine:
                self._lease = Lease(self._consumers, self._staging)
            held_dir = os.path.join(self._lease.path, queue)
            os.makedirs(held_dir, exist_ok=True)
            for name in due:
                if len(taken) == limit:
                    break
                entry = Entry.parse(name)
                entry = entry._replace(deliveries=entry.deliveries + 1)
                held = os.path.join(held_dir, entry.name)
                try:
                    os.rename(os.path.join(self._queued(queue), name), held)
                except FileNotFoundError:
                    continue  # another consumer renamed it first: it is theirs
                message = envelope.unpack(read(held))
                taken.append(Delivery(self, queue, message, entry.deliveries, held))
        return taken

    @_os_errors
    def ack(self, delivery: Delivery) -> None:
        try:
            os.unlink(delivery.tag)
        except FileNotFoundError:
            raise LeaseLost(f"message {delivery.message.id} is no longer held") from None

    @_os_errors
    def nack(self, delivery: Delivery, *, requeue: bool, delay: float, reason: str) -> None:
        entry = Entry.parse(os.path.basename(delivery.tag))
        try:
            if requeue:
                self._requeue(delivery.tag, delivery.queue, entry, delay)
            else:
                self._bury(delivery.tag, delivery.queue, entry, reason)
        except FileNotFoundError:
            if os.path.exists(delivery.tag):
                raise
            raise LeaseLost(f"message {delivery.message.id} is no longer held") from None

    def _requeue(self, held: str, queue: str, entry: Entry, delay: float) -> None:
        """Put a held message back in its queue, or dead-letter it once it has had its share.

        Without a delay it keeps its old due time, so it goes back to the front.
        """
        if entry.deliveries >= self.options.max_deliveries:
            self._bury(held, queue, entry, MAX_DELIVERIES_REASON)
        else:
            due = stamp(delay) if delay > 0 else entry.when
            _move(held, self._queued(queue), entry._replace(when=due).name)

    def _bury(self, held: str, queue: str, entry: Entry, reason: str) -> None:
        """Move a held message to dead/. Its reason file is written first, so a dead letter
        is never seen without its reason."""
        dead = self._dead(queue)
        os.makedirs(dead, exist_ok=True)
        name = entry._replace(when=stamp()).name
        why = reason.encode(errors="backslashreplace")
        write_atomic(self._staging, os.path.join(dead, name + REASON), why, fsync=False)
        try:
            os.rename(held, os.path.join(dead, name))
        except OSError:
            with suppress(FileNotFoundError):
                os.unlink(os.path.join(dead, name + REASON))
            raise

    def _return_held(self, consumer_dir: str) -> None:
        for queue in names(consumer_dir):
            if queue != LOCK:
                for name in names(os.path.join(consumer_dir, queue)):
                    held = os.path.join(consumer_dir, queue, name)
                    self._requeue(held, queue, Entry.parse(name), 0.0)

    # -- administration -------------------------------------------------------------

    @_os_errors
    def size(self, queue: str) -> int:
        validate_queue_name(queue)
        return len(self._due(queue))

    @_os_errors
    def purge(self, queue: str) -> int:
        validate_queue_name(queue)
        removed = 0
        for name in self._due(queue):
            with suppress(FileNotFoundError):  # a consumer claimed it meanwhile
                os.unlink(os.path.join(self._queued(queue), name))
                removed += 1
        return removed

    @_os_errors
    def delete(self, queue: str) -> None:
        validate_queue_name(queue)
        doomed = os.path.join(self._staging, uuid.uuid4().hex)
        try:
            os.rename(os.path.join(self._queues, queue), doomed)  # gone at once, for everyone
        except FileNotFoundError:
            return
        shutil.rmtree(doomed)

    def _dead_names(self, queue: str) -> list[str]:
        return [n for n in names(self._dead(queue)) if not n.endswith(REASON)]

    @_os_errors
    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        validate_queue_name(queue)
        letters = []
        for name in self._dead_names(queue)[:limit]:
            path = os.path.join(self._dead(queue), name)
            try:
                message = envelope.unpack(read(path))
                reason = read(path + REASON).decode()
            except FileNotFoundError:
                continue  # replayed meanwhile
            entry = Entry.parse(name)
            letters.append(DeadLetter(message, queue, reason, entry.when / 1e9, entry.deliveries))
        return letters

    @_os_errors
    def replay_dead_letters(self, queue: str, *, ids: Iterable[str] | None = None) -> int:
        validate_queue_name(queue)
        wanted = None if ids is None else set(ids)
        replayed = 0
        for name in self._dead_names(queue):
            path = os.path.join(self._dead(queue), name)
            try:
                if wanted is not None and envelope.unpack(read(path)).id not in wanted:
                    continue
                _move(path, self._queued(queue), Entry(stamp(), Entry.parse(name).token, 0).name)
            except FileNotFoundError:
                continue  # replayed by someone else meanwhile
            replayed += 1
            with suppress(FileNotFoundError):
                os.unlink(path + REASON)
        return replayed

    # -- lifecycle -------------------------------------------------------------------

    @_os_errors
    def close(self) -> None:
        """Return the messages this consumer holds, then let go of its lock."""
        with self._lock:
            lease, self._lease = self._lease, None
            if lease is not None and lease.mine:
                lease.release(self._return_held)
