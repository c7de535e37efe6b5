"""A consumer process that takes one message and is then frozen (SIGSTOP), as a long GC
pause or a stalled VM freezes one: it stops renewing its lease without closing anything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

from conveyor.core.url import URL

_CONSUMER = """
import sys, time
from conveyor.core.errors import LeaseLost
from conveyor.core.registry import create_transport
url, queue, lease_timeout = sys.argv[1:]
transport = create_transport(url, lease_timeout=float(lease_timeout))
held, deadline = [], time.monotonic() + 30
while not held and time.monotonic() < deadline:
    held = transport.fetch(queue, timeout=5.0)
print("held", held[0].delivery_count if held else 0, flush=True)
sys.stdin.readline()
try:
    held[0].ack()
    print("acked", flush=True)
except LeaseLost:
    print("LeaseLost", flush=True)
"""


class FrozenConsumer:
    """The frozen process: `held` is the delivery count of what it fetched (0: nothing),
    `frozen_at` when it stopped (time.monotonic)."""

    def __init__(self, process: subprocess.Popen[str], held: int) -> None:
        self._process = process
        self.held = held
        self.frozen_at = time.monotonic()

    def wake_and_ack(self) -> str:
        """Let it run and ack what it holds: "acked", or "LeaseLost" when that was refused."""
        assert self._process.stdin is not None and self._process.stdout is not None
        os.kill(self._process.pid, signal.SIGCONT)
        self._process.stdin.write("ack\n")
        self._process.stdin.flush()
        return self._process.stdout.readline().strip()


@contextlib.contextmanager
def frozen_consumer(url: str | URL, queue: str, lease_timeout: float) -> Iterator[FrozenConsumer]:
    """Start a consumer on `url`, wait until it holds a message of `queue`, freeze it, and
    kill it on exit."""
    target = url.unredacted() if isinstance(url, URL) else url
    process = subprocess.Popen(
        [sys.executable, "-c", _CONSUMER, target, queue, str(lease_timeout)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        held = int(line[1]) if line[:1] == ["held"] else 0
        os.kill(process.pid, signal.SIGSTOP)
        yield FrozenConsumer(process, held)
    finally:
        process.kill()
        process.wait(10)
