"""The raw kazoo baseline for transport_bench.py: the same work, no conveyor.

Publish: one transaction of `batch` sequential creates per round trip (what conveyor's
publish_many sends). Consume: the locking-queue pattern with the same guarantees' core:
list the entries, read `batch` of them (pipelined), take them with ephemeral locks (one
multi), then acknowledge them by deleting entries and locks (one multi). An empty listing
waits on a children watch. Conveyor's take also rewrites each entry with a versioned set
(its delivery count and ownership proof); the raw baseline does not.
"""

from __future__ import annotations

import threading

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from conveyor.core.url import parse_url


def _client(url: str) -> tuple[KazooClient, str]:
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
    client, root = _client(url)
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


def consume(url: str, queue: str, n: int, batch: int) -> None:
    client, root = _client(url)
    entries, locks = f"{root}/{queue}/e", f"{root}/{queue}/l"
    changed = threading.Event()
    received = 0
    while received < n:
        changed.clear()
        names = sorted(client.get_children(entries, watch=lambda _event: changed.set()))
        if not names:
            changed.wait(1.0)
            continue
        chosen = names[: min(batch, n - received)]
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
        ack = client.transaction()
        for name, _ in bodies:
            ack.delete(f"{entries}/{name}")
            ack.delete(f"{locks}/{name}")
        ack.commit()
        received += len(bodies)
    client.stop()
    client.close()


def cleanup(url: str, queue: str) -> None:
    client, root = _client(url)
    client.delete(f"{root}/{queue}", recursive=True)
    client.stop()
    client.close()
