"""Worker processes: started by the harness, stopped by PID, their CPU read with psutil."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psutil


def tree(pid: int) -> list[psutil.Process]:
    """The process and its live descendants (a prefork pool's children, Huey's workers)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of the live process tree."""
    total = 0.0
    for process in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


class WorkerProcess:
    """One worker command; output goes to `log`. Stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C reaches the harness only
            )
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu(self) -> float:
        return tree_cpu(self.pid)

    def stop(self, timeout: float = 30.0) -> tuple[int | None, bool]:
        """(exit code, whether SIGKILL was needed). Only this process and the descendants
        seen before the first signal are signalled; descendants that outlive the worker (an
        orphaned pool child) are terminated, then killed."""
        family = tree(self.pid)[1:]
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        forced = False
        try:
            code: int | None = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            forced = True
            self.process.kill()
            code = self.process.wait(10)
        left = [p for p in family if p.is_running()]  # is_running checks the PID's identity
        for process in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()
        _, alive = psutil.wait_procs(left, timeout=5)
        for process in alive:
            forced = True
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        return code, forced
