"""The fault suite's ledger: what was sent, what ran, and what that adds up to after a fault.

The producer side records every publish attempt with its outcome: ``ok`` (publish returned),
``raised`` (a conveyor error that says nothing was sent) or ``unknown`` (the connection
broke with the outcome unknown: ConnectionLost anywhere in the error's chain). The task
side appends a ``start`` and a ``finish`` line per run to one file, with O_APPEND (one
short write per line, so lines from many processes never interleave), which outlives any
worker that is killed and any broker that is down.

After the fault has healed and the queue drained, `count` gives:

* lost: publishes that returned ok and never finished a run;
* duplicated: runs beyond the first of a key;
* unexpected: runs of a key that was never published, or whose publish raised.

A row passes when lost and unexpected are 0 and duplicated is at most the runs that were in
flight at the fault (`in_flight`), which is 0 where nothing died.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.core.errors import ConnectionLost, ConveyorError

OK, RAISED, UNKNOWN = "ok", "raised", "unknown"
LEDGER_ENV = "CONVEYOR_LEDGER_FILE"
# A run that finished this shortly before a fault may not have been acked yet: it is still
# in flight (its result store and ack take milliseconds).
SETTLE_WINDOW = 0.5


def record_run(event: str, key: str, path: str | None = None) -> None:
    """Append one task-side line (`event` is "start" or "finish"); called inside tasks."""
    target = path or os.environ[LEDGER_ENV]
    line = f"{event} {key} {time.time():.6f} {os.getpid()}\n".encode()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _outcome_unknown(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionLost):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(frozen=True)
class Counts:
    published: int
    raised: int
    unknown: int
    runs: int
    lost: int
    duplicated: int
    unexpected: int
    in_flight: int

    def __str__(self) -> str:
        return (
            f"publish ok={self.published} raised={self.raised} unknown={self.unknown}; "
            f"runs={self.runs}; lost={self.lost} duplicated={self.duplicated} "
            f"(in flight at the fault: {self.in_flight}) unexpected={self.unexpected}"
        )

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.unexpected == 0 and self.duplicated <= self.in_flight


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()
        self.publishes: dict[str, str] = {}
        self.in_flight = 0

    # -- producer side -------------------------------------------------------------------

    def publish(self, key: str, send: Callable[[], Any]) -> str:
        """Run `send()` and record its outcome under `key`; never raises a conveyor error."""
        try:
            send()
        except ConveyorError as exc:
            outcome = UNKNOWN if _outcome_unknown(exc) else RAISED
        else:
            outcome = OK
        # A key sent again after "raised" or "unknown" keeps the best outcome seen.
        if self.publishes.get(key) != OK:
            self.publishes[key] = outcome
        return outcome

    # -- task side, read back ------------------------------------------------------------

    def events(self) -> list[tuple[str, str, float]]:
        rows = []
        for line in self.path.read_text().splitlines():
            event, key, at, _pid = line.split()
            rows.append((event, key, float(at)))
        return rows

    def runs(self, event: str = "start") -> Counter[str]:
        return Counter(key for kind, key, _ in self.events() if kind == event)

    def mark_fault(self, publishing: int = 0) -> int:
        """Call right after the fault (a worker killed, a broker restarted): the runs in
        flight then may run again, and so may the `publishing` publishes in flight (a
        retried publish whose first attempt got through). Returns the total so far, which
        `count` allows as duplicates."""
        self.in_flight += publishing
        now = time.time()
        started: set[str] = set()
        settled: set[str] = set()
        for kind, key, at in self.events():
            if kind == "start":
                started.add(key)
            elif now - at > SETTLE_WINDOW:
                settled.add(key)
        self.in_flight += len(started - settled)
        return self.in_flight

    def finished(self) -> bool:
        """Whether every publish that returned ok has finished a run."""
        done = self.runs("finish")
        return all(done[key] for key, outcome in self.publishes.items() if outcome == OK)

    def count(self) -> Counts:
        starts, finishes = self.runs("start"), self.runs("finish")
        outcomes = Counter(self.publishes.values())
        sent = {key for key, outcome in self.publishes.items() if outcome != RAISED}
        return Counts(
            published=outcomes[OK],
            raised=outcomes[RAISED],
            unknown=outcomes[UNKNOWN],
            runs=sum(starts.values()),
            lost=sum(1 for k, o in self.publishes.items() if o == OK and not finishes[k]),
            duplicated=sum(n - 1 for n in starts.values() if n > 1),
            unexpected=sum(n for key, n in starts.items() if key not in sent),
            in_flight=self.in_flight,
        )
