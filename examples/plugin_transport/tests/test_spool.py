"""What the conformance suite does not see: the spool's own layout, URLs and crash paths."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import conveyor_spool.names
import pytest
from conveyor_spool import SpoolTransport
from conveyor_spool.names import Entry

from conveyor.core.errors import BrokerError, BrokerUnavailable, ConfigurationError, LeaseLost
from conveyor.core.message import Delivery, Message
from conveyor.core.registry import create_transport
from conveyor.transports.base import MAX_DELIVERIES_REASON, Transport

QUEUE = "jobs"

# Claims one message, forks if asked (the child just sleeps), reports, then waits to be killed.
_HOLDER = """
import os, sys, time
from conveyor.core.registry import create_transport
url, queue, fork = sys.argv[1], sys.argv[2], sys.argv[3] == "fork"
transport = create_transport(url, lease_timeout=1.0, max_deliveries=int(sys.argv[4]))
held = []
deadline = time.monotonic() + 20
while not held and time.monotonic() < deadline:
    held = transport.fetch(queue, timeout=1.0)
child = os.fork() if fork else -1
if child == 0:
    time.sleep(60)
    os._exit(0)
print("held", len(held), child, flush=True)
time.sleep(60)
"""


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"spool://{tmp_path / 'spool'}"


@pytest.fixture
def transport(url: str) -> Iterator[Transport]:
    transport = create_transport(url, lease_timeout=1.0, max_deliveries=3)
    yield transport
    transport.close()


def fetch_one(transport: Transport, timeout: float = 10.0) -> Delivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = transport.fetch(QUEUE, timeout=0.5)
        if got:
            (delivery,) = got
            return delivery
    raise AssertionError(f"nothing delivered within {timeout} s")


def kill_holder(url: str, *, fork: bool = False, max_deliveries: int = 3) -> list[int]:
    """Start a consumer process holding one message, SIGKILL it; return its forked child."""
    argv = [sys.executable, "-c", _HOLDER, url, QUEUE, "fork" if fork else "-", str(max_deliveries)]
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        words = (holder.stdout.readline() if holder.stdout else "").split()
        assert words[:2] == ["held", "1"], f"consumer process said {words!r}"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    return [int(words[2])] if fork else []


def test_registered_as_plugin(url: str) -> None:
    assert isinstance(create_transport(url), SpoolTransport)


def test_layout_is_plain_files(url: str, transport: Transport) -> None:
    root = Path(url.removeprefix("spool://"))
    transport.publish(QUEUE, Message(b"hello"))
    (queued,) = (root / "queues" / QUEUE / "queued").iterdir()
    assert Entry.parse(queued.name).deliveries == 0

    delivery = fetch_one(transport)
    (held,) = (root / "consumers").glob(f"*/{QUEUE}/*")
    assert Entry.parse(held.name) == Entry.parse(queued.name)._replace(deliveries=1)
    assert not queued.exists()

    delivery.ack()
    assert not held.exists()


def test_names_keep_publish_order_when_the_clock_stalls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conveyor_spool.names, "time", SimpleNamespace(time_ns=lambda: 10**18))
    names = [Entry.new(0.0).name for _ in range(50)]
    assert sorted(names) == names
    assert len(set(names)) == 50


@pytest.mark.parametrize(
    "bad", ["spool://host/var/spool", "spool://", "spool:///tmp/x?poll_interval=0"]
)
def test_bad_urls_are_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        create_transport(bad)


def test_unusable_directory_is_broker_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(BrokerUnavailable):
        create_transport(f"spool://{tmp_path / 'file' / 'spool'}")


def test_os_errors_become_broker_errors(url: str, transport: Transport) -> None:
    Path(url.removeprefix("spool://"), "queues", QUEUE).write_text("in the way")
    with pytest.raises(BrokerError):
        transport.publish(QUEUE, Message(b"x"))


def test_dead_letter_reason_keeps_any_text(transport: Transport) -> None:
    reason = "bad body: 東京 / ../etc\nline two " + "x" * 500
    transport.publish(QUEUE, Message(b"x"))
    fetch_one(transport).nack(requeue=False, reason=reason)
    assert [d.reason for d in transport.dead_letters(QUEUE)] == [reason]


def test_settling_after_close_raises_lease_lost(transport: Transport, url: str) -> None:
    transport.publish_many(QUEUE, [Message(b"a"), Message(b"b")])
    first = fetch_one(transport)
    second = fetch_one(transport)
    transport.close()
    with pytest.raises(LeaseLost):
        first.ack()
    with pytest.raises(LeaseLost):
        second.nack(requeue=True)
    again = create_transport(url)
    try:
        assert again.size(QUEUE) == 2
    finally:
        again.close()


def test_dead_consumer_at_its_last_delivery_is_dead_lettered(url: str) -> None:
    reaper = create_transport(url, lease_timeout=1.0, max_deliveries=1)
    try:
        reaper.publish(QUEUE, Message(b"poison"))
        kill_holder(url, max_deliveries=1)
        assert reaper.fetch(QUEUE, timeout=2.0) == []  # fetching is what reaps
        (dead,) = reaper.dead_letters(QUEUE)
        assert (dead.message.body, dead.reason, dead.delivery_count) == (
            b"poison",
            MAX_DELIVERIES_REASON,
            1,
        )
    finally:
        reaper.close()


def test_forked_child_does_not_keep_the_parents_lease(url: str, transport: Transport) -> None:
    transport.publish(QUEUE, Message(b"task"))
    children = kill_holder(url, fork=True)
    try:
        delivery = fetch_one(transport, timeout=5.0)
        os.kill(children[0], 0)  # the child still lives: it did not hold the lease
        assert (delivery.message.body, delivery.delivery_count) == (b"task", 2)
        delivery.ack()
    finally:
        for child in children:
            os.kill(child, signal.SIGKILL)


def test_a_namespace_keeps_everything_under_its_directory(url: str) -> None:
    """The `namespace` option (docs/security.md): every file the spool creates is under
    ``<root>/<namespace>/``, nothing beside it; another namespace sees none of it."""
    root = Path(url.removeprefix("spool://"))
    billing = create_transport(url, namespace="billing", lease_timeout=1.0, max_deliveries=3)
    other = create_transport(url, lease_timeout=1.0)
    try:
        billing.publish(QUEUE, Message(b"ready"))
        billing.publish(QUEUE, Message(b"later"), delay=30.0)
        (delivery,) = billing.fetch(QUEUE, timeout=5.0)
        delivery.nack(requeue=False, reason="namespace test")
        assert [d.message.body for d in billing.dead_letters(QUEUE)] == [b"ready"]
        assert other.size(QUEUE) == 0 and other.dead_letters(QUEUE) == []
        other.close()
        outside = [p for p in root.iterdir() if p.name != "billing"]
        # the plain transport made its own layout at the root; the namespace made nothing there
        assert not list((root / "queues").iterdir()), outside
        assert (root / "billing" / "queues" / QUEUE / "dead").is_dir()
    finally:
        billing.close()
