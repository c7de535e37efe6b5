"""When a process-pool child is replaced: worker_max_tasks_per_child tasks run, or its
resident memory above worker_max_memory_per_child KiB (Celery's settings and options).

The check runs in the parent after each task, between tasks, so a task is never cut
short by it. Memory is read from /proc (Linux); elsewhere the memory limit is not
enforced and says so once in the log.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("conveyor.worker")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4
_warned: list[bool] = []


def resident_kib(pid: int) -> int | None:
    """Resident memory of process `pid` in KiB, or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm") as file:
            return int(file.read().split()[1]) * _PAGE_KIB
    except (OSError, ValueError, IndexError):
        return None


def used_up(conf: Any, pid: int | None, tasks: int) -> str | None:
    """Why the child `pid` that ran `tasks` tasks should be replaced, or None."""
    most = conf.worker_max_tasks_per_child
    if most and tasks >= int(most):
        return f"it ran {tasks} tasks (max tasks per child {most})"
    limit = conf.worker_max_memory_per_child
    if limit and pid is not None:
        used = resident_kib(pid)
        if used is None:
            if not _warned:
                _warned.append(True)
                log.warning("worker_max_memory_per_child: memory cannot be read here")
        elif used > int(limit):
            return f"it uses {used} KiB (max memory per child {limit} KiB)"
    return None
