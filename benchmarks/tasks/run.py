"""One command: conveyor beside Celery, Dramatiq and Huey on the same brokers, interleaved.

    .venv/bin/python -m benchmarks.tasks.run                      # the full default matrix
    .venv/bin/python -m benchmarks.tasks.run --preset quick       # the issue's rows, <= 15 min
    .venv/bin/python -m benchmarks.tasks.run --brokers redis -n 500 -r 1
    .venv/bin/python -m benchmarks.tasks.run --compare OLD.jsonl NEW.jsonl

A *block* is one system on one broker: a fresh queue, a driver subprocess (the client) and
a freshly started worker. Blocks run in the order rep -> broker -> system (A B C A B C),
so every system sees the same background load within a repetition. Inside a block:

1. enqueue: N `delay()`-style sends with no worker running (timed in the driver);
2. drain: spawn the worker on the N queued tasks; the headline is N / (N-th execution -
   spawn), what a user or an autoscaler sees, start-up included; beside it the steady part
   (first to N-th execution) and spawn to the first execution, all on the Redis server
   clock; and the worker's CPU per task from the first execution seen to the end;
3. latency: one task at a time on the now idle worker, p50/p99;
4. roundtrip: enqueue N and wait for every result; the worker tree's CPU is read before
   and after, giving CPU per task;
5. enqueue_batch (conveyor): N task messages built, then published with publish_many into a
   side queue, counted, removed (timed with and without the building); on RabbitMQ also N
   such bodies through raw pika without confirms (the ceiling for the publish);
6. stop the worker by PID (SIGTERM, deadline, SIGKILL); check the ledger counted exactly the
   tasks sent, the queue is empty and nothing was dead-lettered; remove the queue.

Results go to bench-results/tasks-<time>.jsonl (one line per metric, plus one per block)
and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks.tasks import report
from benchmarks.tasks.counter import Ledger
from benchmarks.tasks.procs import WorkerProcess
from benchmarks.tasks.systems import BROKERS, SYSTEMS, Servers, worker_argv

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ("enqueue", "drain", "latency", "roundtrip")
WARMUP = 10
# --preset NAME: defaults for the other flags (an explicit flag still wins). "quick" is the
# issue's table (enqueue loop, drain from spawn and its steady part, round trip) on its three
# brokers with every peer and the floor, 3 repetitions, no latency phase, N = 3000 so that it
# fits 15 minutes on a quiet 2-core machine (`-n 5000` for the independent harness's N).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "brokers": ["redis", "amqp", "zookeeper"],
        "workloads": ["enqueue", "drain", "roundtrip"],
        "tasks": 3000,
    },
}


class BlockFailed(Exception):
    pass


class Driver:
    """The client subprocess; `call` sends one command and returns its reply."""

    def __init__(self, system: str, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.tasks.driver", system],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        try:
            self.hello = self._reply()
        except BlockFailed:
            self.close()
            raise

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise BlockFailed(f"driver exited (code {self.process.wait()}); see {self.log.name}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self.process.stdin.flush()
        except OSError as exc:  # the driver died: its log says why
            raise BlockFailed(f"{op}: driver gone ({exc}); see {self.log.name}") from None
        reply = self._reply()
        if not reply.pop("ok", False):
            raise BlockFailed(f"{op}: {reply.get('error')}")
        return reply

    def close(self, timeout: float = 30.0) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


@dataclass
class Config:
    systems: list[str]
    brokers: list[str]
    workloads: list[str]
    n: int
    repetitions: int
    latency_samples: int
    latency_budget: float
    timeout: float
    servers: Servers
    logs: Path


@dataclass
class Block:
    """One system on one broker for one repetition, and what it measured."""

    system: str
    broker: str
    rep: int
    queue: str = field(default_factory=lambda: f"bench_{uuid.uuid4().hex[:12]}")
    metrics: dict[str, float] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def rows(self, run_id: str, n: int) -> list[dict[str, Any]]:
        base = {"run": run_id, "system": self.system, "broker": self.broker, "rep": self.rep}
        rows: list[dict[str, Any]] = [
            {**base, "metric": name, "value": value, "n": n, "ok": self.ok}
            for name, value in self.metrics.items()
        ]
        rows.append(
            {**base, "kind": "block", "ok": self.ok, "error": self.error, "checks": self.checks}
        )
        return rows


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, worker: WorkerProcess
) -> None:
    """Poll `condition` every 20 ms; fail at the deadline or as soon as the worker died."""
    deadline = time.monotonic() + timeout
    while not condition():
        if not worker.alive():
            raise BlockFailed(f"the worker exited (code {worker.process.poll()}) before {what}")
        if time.monotonic() > deadline:
            raise BlockFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def faults(checks: dict[str, Any]) -> list[str]:
    """What the end-of-block checks found wrong (nothing, on a good run)."""
    found = []
    if checks["executed"] != checks["expected"]:
        found.append(f"{checks['executed']} executions, expected exactly {checks['expected']}")
    if checks["pending"]:
        found.append(f"{checks['pending']} messages left in the queue")
    found.extend(checks["problems"])
    if checks["forced_kill"]:
        found.append("the worker needed SIGKILL")
    elif checks["exit_code"] != 0:
        found.append(f"the worker exited with code {checks['exit_code']}")
    return found


class BlockRun:
    """The phases of one block, in order; `expected` counts the executions asked for."""

    def __init__(self, block: Block, config: Config) -> None:
        self.block, self.config = block, config
        servers = config.servers
        url = servers.broker_url(block.system, block.broker, block.queue)
        assert url is not None
        run_key = f"bench:{block.queue}"
        self.env = {
            "BENCH_BROKER_URL": url,
            "BENCH_RESULT_URL": servers.redis,
            "BENCH_QUEUE": block.queue,
            "BENCH_COUNTER_URL": servers.redis,
            "BENCH_RUN_KEY": run_key,
            "PYTHONPATH": str(ROOT),
        }
        self.tag = f"{block.system}-{block.broker}-{block.rep}-{block.queue}"
        self.ledger = Ledger(servers.redis, run_key)
        self.driver: Driver | None = None
        self.worker: WorkerProcess | None = None
        self.expected = 0

    def start_worker(self) -> WorkerProcess:
        argv = worker_argv(self.block.system, self.block.queue)
        log = self.config.logs / f"{self.tag}.worker.log"
        self.worker = WorkerProcess(argv, self.env, ROOT, log)
        return self.worker

    def run(self) -> None:
        config, metrics, n = self.config, self.block.metrics, self.config.n
        wanted = set(config.workloads)
        driver = self.driver = Driver(
            self.block.system, self.env, config.logs / f"{self.tag}.driver.log"
        )
        if wanted & {"enqueue", "drain"}:
            sent = driver.call("enqueue", n=n)
            self.expected += n
            if "enqueue" in wanted:
                metrics.update(sent)
            spawned = self.ledger.now()
            worker = self.start_worker()
            wait_for(lambda: self.ledger.count() > 0, config.timeout, "a first task", worker)
            cpu, started = worker.cpu(), self.ledger.count()  # start-up CPU left out
            wait_for(lambda: self.ledger.count() >= n, config.timeout, "the drain", worker)
            if "drain" in wanted:
                last, steady = self.ledger.last(), self.ledger.span()
                metrics["drain_from_spawn_per_s"] = n / max(last - spawned, 1e-6)
                metrics["drain_per_s"] = (n - 1) / max(steady, 1e-6)
                metrics["spawn_to_first_ms"] = (last - steady - spawned) * 1e3
                if ready := self.ledger.ready():  # conveyor's apps stamp it (worker_ready)
                    metrics["spawn_to_ready_ms"] = (ready - spawned) * 1e3
                if n > started:
                    per_task = (worker.cpu() - cpu) / (n - started)
                    metrics["drain_worker_cpu_us_per_task"] = per_task * 1e6
        else:
            worker = self.start_worker()
            driver.call("warmup", n=WARMUP, timeout=config.timeout)
            self.expected += WARMUP
        if "latency" in wanted:
            metrics.update(
                driver.call(
                    "latency",
                    n=config.latency_samples,
                    timeout=config.timeout,
                    budget=config.latency_budget,
                )
            )
            self.expected += int(metrics["latency_samples"])
        if "roundtrip" in wanted:
            cpu = worker.cpu()
            metrics.update(driver.call("roundtrip", n=n, timeout=config.timeout))
            metrics["worker_cpu_us_per_task"] = (worker.cpu() - cpu) / n * 1e6
            self.expected += n
        if "enqueue" in wanted and driver.hello.get("batch"):
            self.enqueue_batch(driver)
        wait_for(lambda: self.ledger.count() >= self.expected, config.timeout, "all", worker)
        self.verify(worker, driver)

    def enqueue_batch(self, driver: Driver) -> None:
        """The batched path into a side queue; on RabbitMQ also raw pika without confirms
        into another one, and the ratio of the two within this block."""
        metrics, n, side = self.block.metrics, self.config.n, f"{self.block.queue}_batch"
        metrics.update(driver.call("enqueue_batch", queue=side, n=n))
        if self.block.broker != "amqp":
            return
        raw = driver.call("enqueue_raw_amqp", queue=f"{side}_raw", n=n, timeout=self.config.timeout)
        metrics.update(raw)
        metrics["enqueue_batch_vs_raw"] = (
            metrics["enqueue_batch_publish_per_s"] / raw["enqueue_raw_unconfirmed_per_s"]
        )

    def verify(self, worker: WorkerProcess, driver: Driver) -> None:
        """Stop the worker, then count executions and look at what the queue kept."""
        code, forced = worker.stop(self.config.timeout)
        self.worker = None
        check = driver.call("check")
        checks = self.block.checks
        checks.update(
            executed=self.ledger.count(),
            expected=self.expected,
            pending=check["pending"],
            problems=check["problems"],
            exit_code=code,
            forced_kill=forced,
        )
        found = faults(checks)
        if found:
            self.block.error = ", ".join(found)

    def close(self) -> None:
        """Stop what is still running and remove the run's queue and ledger."""
        if self.worker is not None:
            self.worker.stop(self.config.timeout)
        if self.driver is not None:
            try:
                self.driver.call("cleanup")
            except BlockFailed as exc:
                self.block.error = self.block.error or f"cleanup: {exc}"
            self.driver.close()
        self.ledger.delete()


def run_block(block: Block, config: Config) -> None:
    block.checks["load1_start"] = os.getloadavg()[0]
    attempt = BlockRun(block, config)
    try:
        attempt.run()
    except Exception as exc:  # one broken block is reported; the run goes on
        block.error = f"{type(exc).__name__}: {exc}"
    finally:
        block.checks["load1_end"] = os.getloadavg()[0]
        attempt.close()


def plan(config: Config) -> list[Block]:
    """rep -> broker -> system, skipping pairs a system cannot run."""
    return [
        Block(system, broker, rep)
        for rep in range(config.repetitions)
        for broker in config.brokers
        for system in config.systems
        if config.servers.broker_url(system, broker, "probe") is not None
    ]


def header(run_id: str, config: Config, argv: list[str]) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in ("conveyor", "celery", "kombu", "dramatiq", "huey", "redis", "pika", "kazoo"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    ledger = Ledger(config.servers.redis, f"bench:{run_id}")
    ledger_cost = round(ledger.cost_us(), 1)
    ledger.delete()
    return {
        "run": run_id,
        "kind": "header",
        "argv": argv,
        "commit": commit,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load1": os.getloadavg()[0],
        "ledger_cpu_us": ledger_cost,
        "versions": versions,
        "n": config.n,
        "repetitions": config.repetitions,
        "latency_samples": config.latency_samples,
        "systems": config.systems,
        "brokers": config.brokers,
        "workloads": config.workloads,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _list(value: str, allowed: tuple[str, ...]) -> list[str]:
    items = [v for v in value.split(",") if v]
    unknown = set(items) - set(allowed)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown: {', '.join(sorted(unknown))}")
    return items


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--preset", choices=sorted(PRESETS), help="defaults for the flags below")
    p.add_argument("--systems", default=",".join(SYSTEMS), type=lambda v: _list(v, SYSTEMS))
    p.add_argument(
        "--brokers",
        default="redis,amqp,zookeeper,postgresql,sqlite",
        type=lambda v: _list(v, BROKERS),
    )
    p.add_argument("--workloads", default=",".join(WORKLOADS), type=lambda v: _list(v, WORKLOADS))
    p.add_argument("-n", "--tasks", type=int, default=5000, help="tasks per workload")
    p.add_argument("-r", "--repetitions", type=int, default=3)
    p.add_argument("--latency-samples", type=int, default=100)
    p.add_argument(
        "--latency-budget",
        type=float,
        default=5.0,
        help="stop sampling latency after this many seconds",
    )
    p.add_argument("--timeout", type=float, default=180.0, help="deadline per phase (s)")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672")
    p.add_argument("--zookeeper", default="zookeeper://127.0.0.1:2181")
    p.add_argument("--postgres", default="sql+postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--out", type=Path, default=ROOT / "bench-results")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    preset = p.parse_known_args(argv)[0].preset
    if preset is not None:
        p.set_defaults(**PRESETS[preset])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.compare:
        print(report.compare(report.load(args.compare[0]), report.load(args.compare[1])))
        return 0
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_id = f"{stamp}-{uuid.uuid4().hex[:6]}"
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / f"tasks-{stamp}.jsonl"
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as scratch:
        logs = args.out / f"tasks-{stamp}-logs"
        logs.mkdir()
        servers = Servers(args.redis, args.amqp, args.zookeeper, args.postgres, Path(scratch))
        config = Config(
            args.systems,
            args.brokers,
            args.workloads,
            args.tasks,
            args.repetitions,
            args.latency_samples,
            args.latency_budget,
            args.timeout,
            servers,
            logs,
        )
        blocks = plan(config)
        psutil.cpu_percent()  # starts the machine-wide CPU meter
        with results.open("w") as out:
            out.write(
                json.dumps(header(run_id, config, sys.argv[1:] if argv is None else argv)) + "\n"
            )
            for index, block in enumerate(blocks, 1):
                started = time.monotonic()
                run_block(block, config)
                block.checks["seconds"] = round(time.monotonic() - started, 2)
                block.checks["machine_cpu_percent"] = psutil.cpu_percent()
                for row in block.rows(run_id, config.n):
                    out.write(json.dumps(row) + "\n")
                out.flush()
                status = "ok" if block.ok else f"FAILED: {block.error}"
                print(
                    f"[{index}/{len(blocks)}] {block.system:<8} {block.broker:<10} "
                    f"rep {block.rep}  {block.checks['seconds']:6.1f} s  {status}",
                    file=sys.stderr,
                    flush=True,
                )
    rows = report.load(results)
    table = report.markdown(rows)
    results.with_suffix(".md").write_text(table)
    print(table)
    print(f"results: {results}\nlogs: {logs}", file=sys.stderr)
    return 0 if all(b.ok for b in blocks) else 1


if __name__ == "__main__":
    sys.exit(main())
