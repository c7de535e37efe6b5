"""Broadcast over ZooKeeper: one inbox per live subscriber.

A subscriber creates, in one transaction, its inbox folder and an ephemeral mark carrying
the same id. A broadcast lists the inboxes first and the marks second, writes the message
into the inbox of every marked (live) subscriber, and removes inboxes whose mark is gone:
their subscriber's session ended. Listing in that order never mistakes a subscriber that
joins meanwhile for a dead one. Each subscriber reads and deletes its own inbox entries, so
every live subscriber receives each broadcast once.
"""

from __future__ import annotations

import contextlib
import time
import uuid

from kazoo.exceptions import NodeExistsError, NoNodeError

from conveyor.core import envelope
from conveyor.core.message import Message
from conveyor.core.transport import Subscription
from conveyor.transports.zookeeper.batch import committed
from conveyor.transports.zookeeper.layout import INBOX_PREFIX, ChannelPaths, sequence_of
from conveyor.transports.zookeeper.session import ZooKeeperSession, translating
from conveyor.transports.zookeeper.view import ChangeSignal


def _children(session: ZooKeeperSession, path: str) -> list[str]:
    try:
        return list(session.wait(session.client.get_children_async(path)))
    except NoNodeError:
        return []


def send_broadcast(session: ZooKeeperSession, channel: str, data: bytes) -> None:
    """Write `data` to the inbox of every live subscriber of `channel`."""
    paths = ChannelPaths.of(session.root, channel)
    inboxes = _children(session, paths.inboxes)
    live = set(_children(session, paths.subscribers))
    client = session.client
    sent = [
        client.create_async(f"{paths.inboxes}/{sid}/{INBOX_PREFIX}", data, sequence=True)
        for sid in live
    ]
    for result in sent:
        with contextlib.suppress(NoNodeError):  # the subscriber closed meanwhile
            session.wait(result)
    for orphan in set(inboxes) - live:
        session.delete_tree(f"{paths.inboxes}/{orphan}")


class ZooKeeperSubscription(Subscription):
    def __init__(self, session: ZooKeeperSession, channel: str) -> None:
        self._session = session
        self._channel = channel
        paths = ChannelPaths.of(session.root, channel)
        self._id = uuid.uuid4().hex
        self._inbox = f"{paths.inboxes}/{self._id}"
        self._mark = f"{paths.subscribers}/{self._id}"
        self._paths = paths
        self._signal = ChangeSignal()
        self._pending: list[str] = []
        self._registered: int | None = None
        self._register()

    def _register(self) -> None:
        """Create inbox and mark together; after a session expiry, whichever of them is gone."""
        session = self._session
        client = session.client
        for folder in (self._paths.inboxes, self._paths.subscribers):
            session.wait(client.ensure_path_async(folder))
        tx = client.transaction()
        tx.create(self._inbox)
        tx.create(self._mark, ephemeral=True)
        if not committed(session.wait(tx.commit_async())):  # an expired session's leftovers
            for path, ephemeral in ((self._inbox, False), (self._mark, True)):
                with contextlib.suppress(NodeExistsError):
                    session.wait(client.create_async(path, ephemeral=ephemeral))
        self._registered = session.session_id()

    def _next(self) -> Message | None:
        session = self._session
        client = session.client
        current = session.session_id()
        if current is not None and current != self._registered:  # the mark went with it
            self._register()
        if self._signal.stale:
            self._signal.clear()
            try:
                names = session.wait(
                    client.get_children_async(self._inbox, watch=self._signal.mark)
                )
            except NoNodeError:  # a broadcaster took us for dead and removed the inbox
                self._register()
                self._signal.mark()
                return None
            self._pending = sorted(names, key=sequence_of)
        while self._pending:
            path = f"{self._inbox}/{self._pending.pop(0)}"
            try:
                data, _ = session.wait(client.get_async(path))
                session.wait(client.delete_async(path))
            except NoNodeError:
                continue
            return envelope.unpack(data)
        return None

    def get(self, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        with translating(f"receive a broadcast on {self._channel!r}"):
            while True:
                message = self._next()
                if message is not None:
                    return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._signal.wait(remaining)

    def close(self) -> None:
        with translating(f"unsubscribe from {self._channel!r}"):
            with contextlib.suppress(NoNodeError):
                self._session.wait(self._session.client.delete_async(self._mark))
            self._session.delete_tree(self._inbox)
