"""The systems under test: how to reach each broker and how to start each worker.

This module imports no task-queue library; the `*_app` modules do, and only run inside the
driver and worker subprocesses, so one system's globals never leak into another's run.
Every app module reads BENCH_BROKER_URL, BENCH_RESULT_URL and BENCH_QUEUE from the
environment, defines `add(x, y)` (which writes to the counter ledger) and `client()`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Servers:
    """Where the shared servers live; the SQLite files go in `scratch`."""

    redis: str
    amqp: str
    zookeeper: str
    postgres: str
    scratch: Path

    def broker_url(self, system: str, broker: str, queue: str) -> str | None:
        """The broker URL in `system`'s dialect, or None when it has no such transport."""
        if system == "conveyor_pipelined" and broker != "amqp":
            return None  # pipelined confirms are RabbitMQ's; elsewhere it is conveyor
        system = family(system)
        if broker == "redis":
            return self.redis
        if system == "raw" and broker not in ("amqp", "zookeeper"):
            return None  # the floor exists for the three brokers
        if broker == "amqp":
            if system == "huey":
                return None  # Huey has no AMQP storage
            # pika (Dramatiq) wants the vhost escaped; kombu and conveyor take "//".
            return self.amqp.rstrip("/") + ("/%2F" if system == "dramatiq" else "//")
        if broker == "zookeeper" and system in ("conveyor", "celery", "raw"):
            return f"{self.zookeeper.rstrip('/')}/bench-{system}"
        if broker == "postgresql" and system == "conveyor":
            return self.postgres
        if broker == "sqlite" and system in ("conveyor", "huey"):
            return f"sqlite:///{self.scratch / f'{queue}.db'}"
        return None


def family(system: str) -> str:
    """conveyor_noevents (events off) and conveyor_pipelined (pipelined confirms) are
    conveyor's variants: they start as conveyor does."""
    return "conveyor" if system.startswith("conveyor") else system


def _module(system: str) -> str:
    return f"benchmarks.tasks.systems.{system}_app"


def worker_argv(system: str, queue: str) -> list[str]:
    """Each system's worker, configured for throughput the way its documentation says
    (benchmarks/README.md, "Configurations", lists the settings and where they come from)."""
    python = sys.executable
    if family(system) == "conveyor":
        # Safe defaults: one process per CPU, late acks, confirms, adaptive prefetch.
        return [python, "-m", "conveyor.cli", "-A", _module(system), "worker", "-Q", queue]
    if system == "celery":
        # prefork, one child per CPU; prefetch multiplier in celery_app; no gossip, mingle
        # or heartbeat (cluster chatter a single worker does not need).
        return [
            *(python, "-m", "celery", "-A", _module(system), "worker", "-Q", queue),
            *("-P", "prefork", "-c", "2", "-n", f"{queue}@%h"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]
    if system == "dramatiq":
        # one process per CPU with Dramatiq's default 8 threads (prefetch: 2 x threads).
        return [python, "-m", "dramatiq", _module(system), "-p", "2", "-t", "8", "-Q", queue]
    if system == "huey":
        consumer = "huey.bin.huey_consumer"
        return [python, "-m", consumer, f"{_module(system)}.huey", "-k", "process", "-w", "2"]
    if system == "raw":
        return [python, "-m", "benchmarks.tasks.systems.raw_worker"]
    raise ValueError(f"unknown system {system!r}")


SYSTEMS = (
    "conveyor", "conveyor_noevents", "conveyor_pipelined", "celery", "dramatiq", "huey", "raw",
)  # fmt: skip
BROKERS = ("redis", "amqp", "zookeeper", "postgresql", "sqlite")
