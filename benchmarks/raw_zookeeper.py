"""The raw kazoo baseline for transport_bench.py: the same work, no conveyor.

Publish: one transaction of `batch` sequential creates per round trip (what conveyor's
publish_many sends). Consume: the locking-queue pattern with the same guarantees' core:
list the entries, read `batch` of them (pipelined), take them with ephemeral locks (one
multi), then acknowledge them by deleting entries and locks (one multi). An empty listing
waits on a children watch. Conveyor's take also rewrites each entry with a versioned set
(its delivery count and ownership proof); the raw baseline does not.

The task benchmark's floor worker (`benchmarks/tasks/systems/raw_worker.py`) runs the same
`consume` with a `Work` that executes each batch before it is acknowledged.
"""

from __future__ import annotations

import threading

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from benchmarks.raw_work import TAKE_ONLY, Work
from conveyor.core.url import parse_url


def connect(url: str) -> tuple[KazooClient, str]:
    parsed = parse_url(url)
    hosts = ",".join(f"{h.name}:{h.port or 2181}" for h in parsed.hosts)
    auth = None
    if parsed.username is not None:
        auth = [("digest", f"{parsed.username}:{parsed.password or ''}")]
    client = KazooClient(hosts, auth_data=auth)
    client.start(timeout=10)
    root = parsed.path.rstrip("/") or "/conveyor"
    return client, f"{root}/raw-bench"


def publish(url: str, queue: str, bodies: list[bytes], batch: int) -> None:
    client, root = connect(url)
    entries = f"{root}/{queue}/e"
    client.ensure_path(entries)
    client.ensure_path(f"{root}/{queue}/l")
    for start in range(0, len(bodies), batch):
        tx = client.transaction()
        for body in bodies[start : start + batch]:
            tx.create(f"{entries}/m", body, sequence=True)
        tx.commit()
    client.stop()
    client.close()


def consume(url: str, queue: str, n: int | None, batch: int, work: Work = TAKE_ONLY) -> None:
    """`n` messages (None: until `work.running()` is false); see raw_work."""
    client, root = connect(url)
    entries, locks = f"{root}/{queue}/e", f"{root}/{queue}/l"
    client.ensure_path(entries)
    client.ensure_path(locks)
    changed = threading.Event()
    received = 0
    while (n is None or received < n) and work.running():
        changed.clear()
        names = sorted(client.get_children(entries, watch=lambda _event: changed.set()))
        if not names:
            changed.wait(0.5)
            continue
        chosen = names[: batch if n is None else min(batch, n - received)]
        reads = [(name, client.get_async(f"{entries}/{name}")) for name in chosen]
        bodies = []
        for name, read in reads:
            try:
                bodies.append((name, read.get()[0]))
            except NoNodeError:
                continue
        take = client.transaction()
        for name, _ in bodies:
            take.create(f"{locks}/{name}", ephemeral=True)
        if any(isinstance(r, Exception) for r in take.commit()):
            continue  # lost a race (not in this single-consumer run): list again
        work.handle([body for _, body in bodies])
        ack = client.transaction()
        for name, _ in bodies:
            ack.delete(f"{entries}/{name}")
            ack.delete(f"{locks}/{name}")
        ack.commit()
        received += len(bodies)
    client.stop()
    client.close()


def cleanup(url: str, queue: str) -> None:
    client, root = connect(url)
    client.delete(f"{root}/{queue}", recursive=True)
    client.stop()
    client.close()
