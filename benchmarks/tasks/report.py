"""Read result files and print them: medians with min-max, ratios conveyor/peer, changes."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.tasks.systems import SYSTEMS

# metric -> (label, which direction is better)
METRICS: dict[str, tuple[str, str]] = {
    "enqueue_per_s": ("enqueue, delay() loop (tasks/s)", "higher"),
    "enqueue_batch_per_s": ("enqueue, batched (tasks/s)", "higher"),
    "enqueue_batch_publish_per_s": ("enqueue, batched: publish_many alone (tasks/s)", "higher"),
    "enqueue_raw_unconfirmed_per_s": ("raw pika publish, unconfirmed (msgs/s)", "higher"),
    "enqueue_batch_vs_raw": ("publish_many / raw unconfirmed (same block)", "higher"),
    "enqueue_client_cpu_us": ("enqueue client CPU (µs/task)", "lower"),
    "drain_from_spawn_per_s": ("drain from worker spawn (tasks/s)", "higher"),
    "drain_per_s": ("drain, steady part: first to last execution (tasks/s)", "higher"),
    "spawn_to_ready_ms": ("worker spawn to ready: first process consuming (ms)", "lower"),
    "spawn_to_first_ms": ("worker spawn to first execution (ms)", "lower"),
    "drain_worker_cpu_us_per_task": ("worker CPU, drain (µs/task)", "lower"),
    "roundtrip_per_s": ("round trip (tasks/s)", "higher"),
    "worker_cpu_us_per_task": ("worker CPU, round trip (µs/task)", "lower"),
    "roundtrip_client_cpu_us": ("client CPU, round trip (µs/task)", "lower"),
    "latency_p50_ms": ("latency p50 (ms)", "lower"),
    "latency_p99_ms": ("latency p99 (ms)", "lower"),
}
# The speed issue's rows: (broker, metric, target ratio of conveyor to the best peer).
TARGETS: list[tuple[str, str, float]] = [
    ("redis", "roundtrip_per_s", 2.0),
    ("redis", "drain_from_spawn_per_s", 2.0),
    ("redis", "drain_per_s", 2.0),
    ("redis", "enqueue_per_s", 1.5),
    ("amqp", "roundtrip_per_s", 2.0),  # asked with pipelined confirms
    ("amqp", "drain_from_spawn_per_s", 2.0),
    ("amqp", "enqueue_per_s", 1.0),  # asked with pipelined confirms
    ("zookeeper", "roundtrip_per_s", 2.0),
    ("zookeeper", "drain_from_spawn_per_s", 2.0),
]
PEERS = ("celery", "dramatiq", "huey")
# The rows the issue asks of conveyor with pipelined confirms, where that variant ran.
PIPELINED_ROWS = ("roundtrip_per_s", "enqueue_per_s")
Key = tuple[str, str, str]  # broker, metric, system
LABELS = {"raw": "floor"}  # the raw client doing the same work (systems/raw_app.py)


def load(path: Path) -> list[dict[str, Any]]:
    with path.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


def samples(rows: list[dict[str, Any]]) -> dict[Key, list[float]]:
    """Values of every metric from blocks whose checks passed."""
    found: dict[Key, list[float]] = defaultdict(list)
    for row in rows:
        if "metric" in row and row.get("ok"):
            found[(row["broker"], row["metric"], row["system"])].append(float(row["value"]))
    return found


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(values: list[float] | None) -> str:
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return _num(median)
    return f"{_num(median)} ({_num(min(values))}-{_num(max(values))})"


def _ratio(a: list[float] | None, b: list[float] | None) -> str:
    if not a or not b or statistics.median(b) == 0:
        return "-"
    return f"{statistics.median(a) / statistics.median(b):.2f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    head = next((r for r in rows if r.get("kind") == "header"), {})
    data = samples(rows)
    systems = [s for s in SYSTEMS if any(k[2] == s for k in data)]
    peers = [s for s in systems if s != "conveyor"]
    out = [
        f"# Task-queue benchmark {head.get('run', '')}",
        "",
        f"N = {head.get('n')} tasks per workload, {head.get('repetitions')} repetition(s), "
        f"{head.get('latency_samples')} latency samples; {head.get('cpus')} CPUs, "
        f"load {head.get('load1', 0):.2f} at start; commit {head.get('commit')}. "
        f"Each execution includes one ledger write to Redis, about "
        f"{head.get('ledger_cpu_us', 0):.0f} µs of worker CPU for every system. "
        "Cells: median (min-max) over repetitions. floor = the broker's raw client doing "
        "the same work (benchmarks/tasks/systems/raw_app.py). Ratio = conveyor / peer "
        "(throughput: above 1 is conveyor faster; CPU and latency: below 1 is conveyor "
        "cheaper/faster).",
    ]
    for broker in dict.fromkeys(k[0] for k in data):
        present = [s for s in systems if any(k[0] == broker and k[2] == s for k in data)]
        others = [p for p in peers if p in present]
        out += ["", f"## {broker}", ""]
        columns = [
            "metric",
            *(LABELS.get(s, s) for s in present),
            *(f"conveyor/{LABELS.get(p, p)}" for p in others),
        ]
        out += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for metric, (label, _) in METRICS.items():
            if not any(k[0] == broker and k[1] == metric for k in data):
                continue
            cells = [_cell(data.get((broker, metric, s))) for s in present]
            ratios = [
                _ratio(data.get((broker, metric, "conveyor")), data.get((broker, metric, p)))
                for p in others
            ]
            out.append("| " + " | ".join([label, *cells, *ratios]) + " |")
        short = {
            s: min(data[(broker, "latency_samples", s)])
            for s in present
            if data.get((broker, "latency_samples", s))
            and min(data[(broker, "latency_samples", s)]) < head.get("latency_samples", 0)
        }
        if short:
            taken = ", ".join(f"{s} {int(v)}" for s, v in short.items())
            out += ["", f"Latency from fewer samples (the time budget ran out): {taken}."]
    out += targets(data)
    failed = [r for r in rows if r.get("kind") == "block" and not r.get("ok")]
    if failed:
        out += ["", "## Failed blocks (their numbers are left out above)", ""]
        out += [f"- {r['system']} on {r['broker']}, rep {r['rep']}: {r['error']}" for r in failed]
    return "\n".join(out) + "\n"


def targets(data: dict[Key, list[float]]) -> list[str]:
    """The issue's rows: conveyor against the best peer (highest median) and the floor."""
    lines = []
    for broker, metric, target in TARGETS:
        mine = data.get((broker, metric, "conveyor"))
        pipelined = data.get((broker, metric, "conveyor_pipelined"))
        mode = ""
        if pipelined and metric in PIPELINED_ROWS:
            mine, mode = pipelined, " (pipelined)"
        peers = [
            (statistics.median(data[(broker, metric, p)]), p)
            for p in PEERS
            if data.get((broker, metric, p))
        ]
        if not mine or not peers:
            continue
        best, peer = max(peers)
        ratio = statistics.median(mine) / best
        floor = data.get((broker, metric, "raw"))
        share = f"{statistics.median(mine) / statistics.median(floor):.2f}" if floor else "-"
        lines.append(
            f"| {broker} | {METRICS[metric][0]} | {_num(statistics.median(mine))}{mode} | "
            f"{peer} {_num(best)} | {ratio:.2f}x | >= {target:g}x | "
            f"{'met' if ratio >= target else 'not met'} | {_cell(floor)} | {share} |"
        )
    if not lines:
        return []
    head = (
        "| broker | workload | conveyor | best peer | ratio | target | | floor | conveyor/floor |"
    )
    return ["", "## Against the targets", "", head, "|" + "---|" * 9, *lines]


def _overlap(a: list[float], b: list[float]) -> bool:
    """Whether two runs' min-max ranges overlap (then a change may be noise)."""
    return len(a) > 1 and len(b) > 1 and min(a) <= max(b) and min(b) <= max(a)


def compare(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    """Median of each (broker, metric, system) in OLD and NEW, and the change, judged by
    the metric's direction; "ranges overlap" warns that the change may be noise."""
    before, after = samples(old), samples(new)
    out = [
        "| broker | metric | system | old | new | change |",
        "|---|---|---|---|---|---|",
    ]
    for key in sorted(set(before) & set(after)):
        broker, metric, system = key
        a, b = statistics.median(before[key]), statistics.median(after[key])
        label, better = METRICS.get(metric, (metric, "higher"))
        change = (b - a) / a * 100 if a else float("nan")
        if abs(change) < 0.5:
            verdict = "same"
        else:
            verdict = "better" if (change > 0) == (better == "higher") else "worse"
        if _overlap(before[key], after[key]):
            verdict += ", ranges overlap"
        out.append(
            f"| {broker} | {label} | {system} | {_num(a)} | {_num(b)} | "
            f"{change:+.1f}% ({verdict}) |"
        )
    only = sorted(set(before) ^ set(after))
    if only:
        out += ["", "In one file only: " + ", ".join("/".join(k) for k in only)]
    return "\n".join(out) + "\n"
