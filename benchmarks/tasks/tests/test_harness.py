"""The harness's own arithmetic and checks, and one tiny real run against Redis.

.venv/bin/pytest benchmarks/tasks/tests
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from benchmarks import raw_amqp
from benchmarks.tasks import report, run
from benchmarks.tasks.systems import Servers
from benchmarks.tasks.workloads import percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0


def _checks(**changes: Any) -> dict[str, Any]:
    good = {
        "executed": 10,
        "expected": 10,
        "pending": 0,
        "problems": [],
        "forced_kill": False,
        "exit_code": 0,
    }
    return {**good, **changes}


def test_faults_names_each_broken_promise() -> None:
    assert run.faults(_checks()) == []
    assert run.faults(_checks(executed=11)) == ["11 executions, expected exactly 10"]
    assert run.faults(_checks(pending=2, exit_code=1)) == [
        "2 messages left in the queue",
        "the worker exited with code 1",
    ]
    assert run.faults(_checks(forced_kill=True, problems=["dead letter: x"])) == [
        "dead letter: x",
        "the worker needed SIGKILL",
    ]


def _row(system: str, metric: str, value: float, ok: bool = True) -> dict[str, Any]:
    return {
        "system": system,
        "broker": "redis",
        "rep": 0,
        "metric": metric,
        "value": value,
        "ok": ok,
    }


def test_markdown_gives_medians_ranges_ratios_and_leaves_failed_blocks_out() -> None:
    rows = [
        {"kind": "header", "n": 10, "repetitions": 3, "latency_samples": 100},
        _row("conveyor", "latency_samples", 100.0),
        _row("celery", "latency_samples", 7.0),
        *(_row("conveyor", "drain_per_s", v) for v in (150.0, 200.0, 400.0)),
        *(_row("celery", "drain_per_s", v) for v in (90.0, 100.0, 130.0)),
        _row("celery", "drain_per_s", 10_000.0, ok=False),
        {
            "kind": "block",
            "system": "celery",
            "broker": "redis",
            "rep": 3,
            "ok": False,
            "error": "3 executions, expected exactly 10",
        },
    ]
    table = report.markdown(rows)
    steady = report.METRICS["drain_per_s"][0]
    assert f"| {steady} | 200 (150-400) | 100 (90.0-130) | 2.00 |" in table
    assert "- celery on redis, rep 3: 3 executions, expected exactly 10" in table
    assert "fewer samples (the time budget ran out): celery 7." in table


def test_compare_judges_by_the_metric_direction() -> None:
    old = [_row("conveyor", "drain_per_s", 100.0), _row("conveyor", "latency_p50_ms", 2.0)]
    new = [_row("conveyor", "drain_per_s", 150.0), _row("conveyor", "latency_p50_ms", 3.0)]
    text = report.compare(old, new)
    steady = report.METRICS["drain_per_s"][0]
    assert f"| redis | {steady} | conveyor | 100 | 150 | +50.0% (better) |" in text
    assert "| redis | latency p50 (ms) | conveyor | 2.00 | 3.00 | +50.0% (worse) |" in text
    noisy = report.compare(
        [_row("conveyor", "drain_per_s", v) for v in (90.0, 100.0, 140.0)],
        [_row("conveyor", "drain_per_s", v) for v in (120.0, 130.0, 150.0)],
    )
    assert "| 100 | 130 | +30.0% (better, ranges overlap) |" in noisy


def test_broker_urls_per_system(tmp_path: Path) -> None:
    servers = Servers("redis://r/0", "amqp://g:g@h:5672", "zookeeper://z:2181", "pg", tmp_path)
    assert servers.broker_url("huey", "amqp", "q") is None
    assert servers.broker_url("dramatiq", "amqp", "q") == "amqp://g:g@h:5672/%2F"
    assert servers.broker_url("celery", "amqp", "q") == "amqp://g:g@h:5672//"
    assert servers.broker_url("celery", "sqlite", "q") is None
    assert servers.broker_url("conveyor", "sqlite", "q") == f"sqlite:///{tmp_path / 'q.db'}"


def test_a_tiny_run_counts_every_execution(redis_url: str, tmp_path: Path) -> None:
    code = run.main(
        [
            "--systems",
            "conveyor,huey",
            "--brokers",
            "redis",
            "-n",
            "20",
            "-r",
            "1",
            "--latency-samples",
            "3",
            "--redis",
            redis_url,
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    [results] = tmp_path.glob("tasks-*.jsonl")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    blocks = [r for r in rows if r.get("kind") == "block"]
    assert [(b["system"], b["ok"]) for b in blocks] == [("conveyor", True), ("huey", True)]
    # drain (20) + latency (3) + round trip (20); the batched enqueue is never executed
    assert all(b["checks"]["executed"] == b["checks"]["expected"] == 43 for b in blocks)
    metrics = {(r["system"], r["metric"]) for r in rows if "metric" in r}
    assert ("conveyor", "enqueue_batch_per_s") in metrics
    assert ("conveyor", "enqueue_batch_publish_per_s") in metrics
    assert ("huey", "worker_cpu_us_per_task") in metrics
    values = {(r["system"], r["metric"]): r["value"] for r in rows if "metric" in r}
    for system in ("conveyor", "huey"):  # the spawn counts: start-up lowers the headline
        assert values[(system, "spawn_to_first_ms")] > 0
        assert values[(system, "drain_from_spawn_per_s")] < values[(system, "drain_per_s")]
    # ready is stamped by conveyor's worker_ready signal; the peers have no such line
    assert values[("conveyor", "spawn_to_ready_ms")] > 0
    assert ("huey", "spawn_to_ready_ms") not in values
    assert results.with_suffix(".md").read_text().startswith("# Task-queue benchmark")


def test_raw_unconfirmed_baseline_sends_every_body_and_removes_its_queue(amqp_url: str) -> None:
    queue = f"bench_raw_{uuid.uuid4().hex[:8]}"
    rate = raw_amqp.unconfirmed_rate(amqp_url, queue, [b"x%d" % i for i in range(50)], 10.0)
    assert rate > 0
    connection = raw_amqp.connect(amqp_url)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="NOT_FOUND"):
            connection.channel().queue_declare(queue, passive=True)
    finally:
        connection.close()


def test_on_rabbitmq_the_batched_publish_is_set_against_raw_pika(
    redis_url: str, amqp_url: str, tmp_path: Path
) -> None:
    argv = ["--systems", "conveyor", "--brokers", "amqp", "--workloads", "enqueue", "-n", "20"]
    argv += ["-r", "1", "--redis", redis_url, "--amqp", amqp_url, "--out", str(tmp_path)]
    assert run.main(argv) == 0
    [results] = tmp_path.glob("tasks-*.jsonl")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    metrics = {r["metric"]: r["value"] for r in rows if "metric" in r}
    publish, raw = metrics["enqueue_batch_publish_per_s"], metrics["enqueue_raw_unconfirmed_per_s"]
    assert metrics["enqueue_batch_vs_raw"] == pytest.approx(publish / raw)
    assert (
        "| publish_many / raw unconfirmed (same block) |" in results.with_suffix(".md").read_text()
    )


def test_targets_set_conveyor_against_the_best_peer_and_the_floor() -> None:
    data = report.samples(
        [
            _row("conveyor", "roundtrip_per_s", 3000.0),
            _row("huey", "roundtrip_per_s", 2000.0),
            _row("dramatiq", "roundtrip_per_s", 1000.0),
            _row("raw", "roundtrip_per_s", 6000.0),
            _row("conveyor", "enqueue_per_s", 3000.0),
            _row("huey", "enqueue_per_s", 1500.0),
        ]
    )
    lines = report.targets(data)
    label = report.METRICS["roundtrip_per_s"][0]
    assert (
        f"| redis | {label} | 3,000 | huey 2,000 | 1.50x | >= 2x | not met | 6,000 | 0.50 |"
        in lines
    )
    enqueue = report.METRICS["enqueue_per_s"][0]
    assert f"| redis | {enqueue} | 3,000 | huey 1,500 | 2.00x | >= 1.5x | met | - | - |" in lines


def test_a_preset_sets_defaults_and_an_explicit_flag_still_wins() -> None:
    quick = run.parse_args(["--preset", "quick"])
    assert (quick.brokers, quick.workloads) == (
        ["redis", "amqp", "zookeeper"],
        ["enqueue", "drain", "roundtrip"],
    )
    assert (quick.tasks, quick.repetitions) == (3000, 3)
    assert run.parse_args(["--preset", "quick", "-n", "5000"]).tasks == 5000
    assert run.parse_args(["--preset", "quick", "--brokers", "redis"]).brokers == ["redis"]
    assert "latency" in run.parse_args([]).workloads


def test_the_floor_counts_every_execution_on_each_broker(
    redis_url: str, amqp_url: str, zookeeper_url: str, tmp_path: Path
) -> None:
    argv = ["--systems", "raw", "--brokers", "redis,amqp,zookeeper", "-n", "30", "-r", "1"]
    argv += ["--latency-samples", "3", "--redis", redis_url, "--amqp", amqp_url]
    argv += ["--zookeeper", zookeeper_url, "--out", str(tmp_path)]
    assert run.main(argv) == 0
    [results] = tmp_path.glob("tasks-*.jsonl")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    blocks = [r for r in rows if r.get("kind") == "block"]
    assert [(b["broker"], b["ok"]) for b in blocks] == [
        ("redis", True),
        ("amqp", True),
        ("zookeeper", True),
    ]
    # drain (30) + latency (3) + round trip (30), each exactly once, nothing left behind
    assert all(b["checks"]["executed"] == b["checks"]["expected"] == 63 for b in blocks)
    assert all(b["checks"]["pending"] == 0 for b in blocks)
    table = results.with_suffix(".md").read_text()
    assert "| metric | floor |" in table
