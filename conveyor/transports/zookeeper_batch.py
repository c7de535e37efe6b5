"""Many small ZooKeeper transactions committed as few multi requests.

Each item (a take, an ack, a purge of one entry) is its own logical transaction. They go
out combined into multis of at most ~900 kB (ZooKeeper drops a connection whose request
passes jute.maxbuffer, 1 MiB by default), all pipelined: one round trip for the batch. A
multi fails as a whole when one item loses a race, so only then are its items sent again
one by one to learn which of them lost.
"""

from __future__ import annotations

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

from conveyor.transports.zookeeper_session import ZooKeeperSession

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
    client = session.client
    batches = groups(items, cost) if together else [[item] for item in items]
    sent = []
    for batch in batches:
        tx = client.transaction()
        for item in batch:
            build(tx, item)
        sent.append((batch, tx.commit_async()))
    outcome: list[bool | None] = []
    for batch, result in sent:
        try:
            won: bool | None = committed(session.wait(result))
        except OUTCOME_UNKNOWN:
            won = None
        if won is False and len(batch) > 1:  # someone lost a race: find out who
            outcome += commit_each(session, batch, build, together=False)
        else:
            outcome += [won] * len(batch)
    return outcome
