"""The `conveyor events` screen: workers, rates per task, recent failures, in one frame
cut to the terminal's size (redrawn in place by the command)."""

from __future__ import annotations

import time
from datetime import datetime

from conveyor.monitoring.state import ClusterState, worker_alive


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"


def render(state: ClusterState, width: int = 100, height: int = 40) -> str:
    """One frame as text, at most `height` lines of at most `width` characters."""
    now = time.time()
    workers, failures = state.snapshot()
    lines = [
        f"conveyor events  {datetime.now().strftime('%H:%M:%S')}  "
        f"{sum(state.totals.values())} events seen",
        "",
        f"WORKERS ({len(workers)})",
        f"  {'hostname':<36} {'status':<8} {'active':>6} {'processed':>9}  load",
    ]
    for name, event in sorted(workers.items()):
        alive = "online" if worker_alive(event, now) else "offline"
        load = " ".join(str(x) for x in event.get("loadavg") or [])
        lines.append(
            f"  {name:<36} {alive:<8} {event.get('active', 0):>6} "
            f"{event.get('processed', 0):>9}  {load}"
        )
    lines += ["", "TASKS (last minute)", f"  {'name':<48} {'ok':>7} {'failed':>7} {'/min':>7}"]
    for name, rate in sorted(state.rates(now).items(), key=lambda i: -i[1]["per_minute"]):
        lines.append(
            f"  {name:<48} {rate['succeeded']:>7} {rate['failed']:>7} {rate['per_minute']:>7.0f}"
        )
    lines += ["", "RECENT FAILURES"]
    for failure in failures:
        stamp = datetime.fromtimestamp(failure.timestamp).strftime("%H:%M:%S")
        lines.append(f"  {stamp} {failure.name} [{failure.uuid}] {failure.exception}")
    if not failures:
        lines.append("  none")
    return "\n".join(_clip(line, width) for line in lines[:height])
