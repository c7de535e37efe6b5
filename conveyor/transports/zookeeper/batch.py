"""Many small ZooKeeper transactions committed as few multi requests.

Each item (a take, an ack, a purge of one entry) is its own logical transaction. They go
out combined into multis of at most ~900 kB (ZooKeeper drops a connection whose request
passes jute.maxbuffer, 1 MiB by default), all pipelined: one round trip for the batch. A
multi fails as a whole when one item loses a race; the reply names the first losing op, so
that item is dropped and the rest sent again together.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kazoo.client import TransactionRequest
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.handlers.threading import KazooTimeoutError

from conveyor.transports.zookeeper.session import ZooKeeperSession

T = TypeVar("T")
BATCH_BYTES = 900_000
OP_OVERHEAD = 256
# A transaction that lost a race: the failing op's error, RolledBack for the ops before it,
# RuntimeInconsistency for the ops after it.
CONTENTION = (
    NodeExistsError,
    NoNodeError,
    BadVersionError,
    RolledBackError,
    RuntimeInconsistency,
)
# The op that made a transaction fail (the others report RolledBack or RuntimeInconsistency).
_LOSERS = (NodeExistsError, NoNodeError, BadVersionError)
# The request may or may not have been applied.
OUTCOME_UNKNOWN = (ConnectionLoss, ConnectionClosedError, OperationTimeoutError, KazooTimeoutError)


def committed(results: list[Any]) -> bool:
    """True if a transaction committed; False if it lost a race; raises anything else."""
    failures = [r for r in results if isinstance(r, Exception)]
    for failure in failures:
        if not isinstance(failure, CONTENTION):
            raise failure
    return not failures


def groups(items: Sequence[T], cost: Callable[[T], int]) -> list[list[T]]:
    """Split `items` in order into groups whose cost stays under BATCH_BYTES."""
    result: list[list[T]] = [[]]
    size = 0
    for item in items:
        weight = cost(item) + OP_OVERHEAD
        if result[-1] and size + weight > BATCH_BYTES:
            result.append([])
            size = 0
        result[-1].append(item)
        size += weight
    return result if result[0] else []


def commit_each(
    session: ZooKeeperSession,
    items: Sequence[T],
    build: Callable[[TransactionRequest, T], None],
    cost: Callable[[T], int] = lambda _item: 0,
    *,
    together: bool = True,
) -> list[bool | None]:
    """Commit one logical transaction per item; per item: committed, lost a race, or unknown.

    Kazoo exceptions other than contention and lost replies propagate (NoAuth, ...).
    """
    batches = groups(items, cost) if together else [[item] for item in items]
    sent = [(batch, *_send(session, batch, build)) for batch in batches]
    outcome: list[bool | None] = []
    for batch, ends, result in sent:
        outcome += _outcome(session, batch, build, ends, result)
    return outcome


def _send(
    session: ZooKeeperSession, batch: Sequence[T], build: Callable[[TransactionRequest, T], None]
) -> tuple[list[int], Any]:
    """One multi for `batch`: where each item's ops end, and the pending reply."""
    tx = session.client.transaction()
    ends = []
    for item in batch:
        build(tx, item)
        ends.append(len(tx.operations))
    return ends, tx.commit_async()


def _outcome(
    session: ZooKeeperSession,
    batch: Sequence[T],
    build: Callable[[TransactionRequest, T], None],
    ends: list[int],
    result: Any,
) -> list[bool | None]:
    """Each item's outcome. A multi fails at the first op that lost a race: that item lost,
    and the others are sent again together, so a batch with k losers costs k + 1 multis
    rather than one per item."""
    won: list[bool | None] = [None] * len(batch)
    pending = list(range(len(batch)))
    while True:
        try:
            results = session.wait(result)
        except OUTCOME_UNKNOWN:
            return won  # None for every pending item
        if committed(results):
            for index in pending:
                won[index] = True
            return won
        if len(pending) == 1:
            won[pending[0]] = False
            return won
        failed = next((i for i, r in enumerate(results) if isinstance(r, _LOSERS)), None)
        if failed is None:  # no single culprit named: ask one by one
            alone = commit_each(session, [batch[i] for i in pending], build, together=False)
            for index, outcome in zip(pending, alone, strict=True):
                won[index] = outcome
            return won
        won[pending.pop(bisect_right(ends, failed))] = False
        ends, result = _send(session, [batch[i] for i in pending], build)
