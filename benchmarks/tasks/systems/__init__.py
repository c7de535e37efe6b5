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
        system = family(system)
        if broker == "redis":
            return self.redis
        if broker == "amqp":
            if system == "huey":
                return None  # Huey has no AMQP storage
            # pika (Dramatiq) wants the vhost escaped; kombu and conveyor take "//".
            return self.amqp.rstrip("/") + ("/%2F" if system == "dramatiq" else "//")
        if broker == "zookeeper" and system in ("conveyor", "celery"):
            return f"{self.zookeeper.rstrip('/')}/bench-{system}"
        if broker == "postgresql" and system == "conveyor":
            return self.postgres
        if broker == "sqlite" and system in ("conveyor", "huey"):
            return f"sqlite:///{self.scratch / f'{queue}.db'}"
        return None


def family(system: str) -> str:
    """conveyor_noevents (conveyor with its events off) runs where conveyor runs."""
    return "conveyor" if system.startswith("conveyor") else system


def _module(system: str) -> str:
    return f"benchmarks.tasks.systems.{system}_app"


def worker_argv(system: str, queue: str) -> list[str]:
    """Each system's worker with its library defaults (pool kind and size as in the brief)."""
    python = sys.executable
    if family(system) == "conveyor":
        # Safe defaults: threads pool x CPUs, late acks, confirms, prefetch 4 x concurrency.
        return [python, "-m", "conveyor.cli", "-A", _module(system), "worker", "-Q", queue]
    if system == "celery":
        return [
            *(python, "-m", "celery", "-A", _module(system), "worker", "-Q", queue),
            *("-P", "prefork", "-c", "2", "-n", f"{queue}@%h"),
        ]
    if system == "dramatiq":
        return [python, "-m", "dramatiq", _module(system), "-p", "2", "-t", "4", "-Q", queue]
    if system == "huey":
        consumer = "huey.bin.huey_consumer"
        return [python, "-m", consumer, f"{_module(system)}.huey", "-k", "process", "-w", "2"]
    raise ValueError(f"unknown system {system!r}")


SYSTEMS = ("conveyor", "conveyor_noevents", "celery", "dramatiq", "huey")
BROKERS = ("redis", "amqp", "zookeeper", "postgresql", "sqlite")
