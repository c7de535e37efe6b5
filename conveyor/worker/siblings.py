"""More worker processes on one command line (`worker_processes`).

A worker process runs Python on one core at a time (the GIL), so on a machine with more
cores one process leaves the others to the broker and the clients at best, idle at worst.
With `worker_processes` N > 1 the `conveyor worker` process starts N - 1 siblings running
the same command line (each a complete worker: its own consumer, pool, connections and
hostname) and passes its signals on to them: a warm shutdown of the first is a warm
shutdown of all, a second signal is cold for all, and a sibling whose parent dies is sent
SIGTERM by the kernel (PR_SET_PDEATHSIG), so none outlives the command.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import time
from contextlib import suppress

log = logging.getLogger("conveyor.worker")
#: Set in a sibling's environment: it runs as one process and starts no siblings.
SIBLING_ENV = "CONVEYOR_WORKER_SIBLING"
#: Set in a sibling's environment: the pipe on which it says it is consuming.
READY_FD_ENV = "CONVEYOR_WORKER_READY_FD"
_PR_SET_PDEATHSIG = 1


def is_sibling() -> bool:
    return bool(os.environ.get(SIBLING_ENV))


def on_command_line() -> bool:
    """Whether this process runs the `conveyor worker` command, so that its `sys.argv` is a
    command line a sibling can run (not a program embedding a Worker)."""
    import click

    context = click.get_current_context(silent=True)
    return context is not None and context.info_name == "worker"


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return


def say_ready() -> None:
    """In a sibling that is consuming: tell the first process (see `Siblings.wait_ready`)."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is not None:
        with suppress(OSError):
            os.write(int(fd), b"r")
            os.close(int(fd))


class Siblings:
    """The sibling worker processes of this one, started from this process's command line."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._procs: list[subprocess.Popen[bytes]] = []
        self._ready: list[int] = []  # the read ends of the siblings' ready pipes

    def start(self) -> None:
        command = [sys.executable, "-m", "conveyor.cli", *sys.argv[1:]]
        for number in range(1, self.count + 1):
            readable, writable = os.pipe()
            env = dict(os.environ, **{SIBLING_ENV: str(number), READY_FD_ENV: str(writable)})
            self._procs.append(
                subprocess.Popen(
                    command, env=env, preexec_fn=_die_with_parent, pass_fds=(writable,)
                )
            )
            os.close(writable)
            self._ready.append(readable)
        log.info("started %d sibling worker processes: %s", self.count, self.pids)

    def wait_ready(self, timeout: float) -> int:
        """Wait up to `timeout` until each sibling is consuming (or has exited); how many
        said they are. The first process starts consuming after this, so a backlog is
        shared from the start rather than taken a full window at a time by the one
        process that happened to be ready first."""
        deadline = time.monotonic() + timeout
        waiting, ready = list(self._ready), 0
        while waiting and (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select(waiting, [], [], left)
            for fd in readable:
                ready += len(os.read(fd, 1))  # b"" when the sibling exited first
                waiting.remove(fd)
        for fd in self._ready:
            os.close(fd)
        self._ready = []
        return ready

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    def signal(self, signum: int) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    proc.send_signal(signum)

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` for every sibling to exit; True if all did."""
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def kill(self) -> None:
        """SIGKILL the siblings still running (after a cold shutdown's grace)."""
        self.signal(signal.SIGKILL)
        self.wait(5.0)
