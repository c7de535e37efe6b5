"""The client subprocess of one benchmark block: `python -m benchmarks.tasks.driver SYSTEM`.

It imports one system's app module (configured by the BENCH_* environment), then answers
one JSON command per stdin line with one JSON line on stdout, so the harness can start and
stop workers and read their CPU between workloads while this process keeps its warm
connections. Library logging goes to stderr, which the harness sends to a log file.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any

from benchmarks.tasks import workloads


def handle(client: Any, command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    timeout = float(command.get("timeout", 120.0))
    if op == "enqueue":
        return workloads.enqueue(client, command["n"])
    if op == "enqueue_batch":
        return workloads.enqueue_batch(client, command["queue"], command["n"])
    if op == "enqueue_raw_amqp":
        url = os.environ["BENCH_BROKER_URL"]
        return workloads.enqueue_raw_amqp(client, url, command["queue"], command["n"], timeout)
    if op == "roundtrip":
        return workloads.roundtrip(client, command["n"], timeout)
    if op == "latency":
        return workloads.latency(client, command["n"], timeout, float(command["budget"]))
    if op == "warmup":
        return workloads.warmup(client, command["n"], timeout)
    if op == "check":
        return {"pending": client.pending(), "problems": client.problems()}
    if op == "cleanup":
        client.cleanup()
        return {}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    module = importlib.import_module(f"benchmarks.tasks.systems.{sys.argv[1]}_app")
    client = module.client()
    reply: dict[str, Any] = {"ready": True, "batch": hasattr(client, "send_batch")}
    print(json.dumps(reply), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        try:
            reply = {"ok": True, **handle(client, command)}
        except Exception as exc:  # reported to the harness, which marks the block failed
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)
        if command["op"] == "cleanup":
            return


if __name__ == "__main__":
    main()
