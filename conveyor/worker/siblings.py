"""More worker processes on one command line (`worker_processes`).

A worker process runs Python on one core at a time (the GIL), so on a machine with more
cores one process leaves the others to the broker and the clients at best, idle at worst.
With `worker_processes` N > 1 the `conveyor worker` process starts N - 1 siblings (each a
complete worker: its own consumer, pool, connections and hostname) and passes its signals
on to them: a warm shutdown of the first is a warm shutdown of all, a second signal is cold
for all, and a sibling whose parent dies is sent SIGTERM by the kernel (PR_SET_PDEATHSIG),
so none outlives the command.

Start-up is what an autoscaler pays for every new worker, so the siblings start at once and
nobody waits for anybody: each process says ready when its own consumer consumes.

Where it is safe a sibling is **forked** from the first process once the app and its task
modules are imported, so it imports nothing again (`import redis` alone costs 0.25-0.5 s
with redis-py 8). Safe means, checked at the moment of the fork (`fork_refusal`):

* Linux: `os.fork`, `/proc/self` to check the two points below, and PR_SET_PDEATHSIG.
* One thread in the process (counted by the kernel, `/proc/self/task`): a fork copies only
  the calling thread, so a lock another thread held (logging's, an import lock, a client
  library's) would stay held forever in the child, and that thread's work would not exist.
* No socket open (`/proc/self/fd`): a forked child would share the connection with its
  parent and interleave its bytes with the parent's. The worker opens its transport, its
  backend and its control and event connections after the fork, in each process.

What a fork shares beyond that is what the process imported and built at import time
(module globals, the app and its configuration), which is what a spawned sibling would
rebuild the same from the same command line; `random` is reseeded by Python in the child,
and each process takes its own pid-based hostname after the fork. When a check fails (an
app module that starts a thread or opens a connection at import, `-B` and `--metrics-port`,
whose threads start first, another platform) the sibling is **spawned** instead: a fresh
interpreter running the same command line, with the reason in the log.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from typing import Protocol

log = logging.getLogger("conveyor.worker")
#: Set in a sibling's environment: it runs as one process and starts no siblings.
SIBLING_ENV = "CONVEYOR_WORKER_SIBLING"
_PR_SET_PDEATHSIG = 1
_REAP_POLL = 0.05  # at most this long between checks of a forked sibling's exit


def is_sibling() -> bool:
    return bool(os.environ.get(SIBLING_ENV))


def on_command_line() -> bool:
    """Whether this process runs the `conveyor worker` command, so that its `sys.argv` is a
    command line a sibling can run (not a program embedding a Worker)."""
    import click

    context = click.get_current_context(silent=True)
    return context is not None and context.info_name == "worker"


def fork_refusal() -> str | None:
    """Why forking this process now would not be safe (see the module's docstring), or
    None when it is."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return f"fork is used on Linux only, this is {sys.platform}"
    threads = len(os.listdir("/proc/self/task"))
    if threads > 1:
        names = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
        return f"{threads} threads run in this process ({', '.join(names) or 'not Python'})"
    sockets = 0
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the directory's own descriptor is gone by now
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    if sockets:
        return f"{sockets} sockets are open in this process"
    return None


def _die_with_parent() -> None:
    """In the child: SIGTERM when the parent dies (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return


class _Child(Protocol):
    """What Siblings needs of a sibling process: `subprocess.Popen`'s names."""

    pid: int

    def poll(self) -> int | None: ...
    def send_signal(self, signum: int) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


class _Forked:
    """A forked sibling, with the `subprocess.Popen` methods Siblings uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            with suppress(ChildProcessError):
                done, status = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def wait(self, timeout: float | None = None) -> int:
        """Popen.wait's contract: the exit code, or TimeoutExpired (polled, as Popen.wait
        with a timeout polls too)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            left = _REAP_POLL if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"sibling {self.pid}", timeout or 0.0)
            time.sleep(min(_REAP_POLL, left))
        return code


class Siblings:
    """The sibling worker processes of this one, all started together (`start`)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._procs: list[_Child] = []

    def start(self) -> bool:
        """Start the siblings; False in the first process, True in a forked sibling, which
        carries on from here as a single worker process (`is_sibling()` is then true)."""
        refusal = fork_refusal()
        for number in range(1, self.count + 1):
            if refusal is None:
                sys.stdout.flush()  # or the child would write the parent's buffer again
                sys.stderr.flush()
                parent, pid = os.getpid(), os.fork()
                if pid == 0:
                    os.environ[SIBLING_ENV] = str(number)
                    self._procs = []
                    _die_with_parent()
                    if os.getppid() != parent:  # the parent died before the line above
                        os._exit(1)
                    return True
                self._procs.append(_Forked(pid))
            else:
                self._procs.append(self._spawn(number))
        how = "forked" if refusal is None else f"spawned: {refusal}"
        log.info("started %d sibling worker processes (%s): %s", self.count, how, self.pids)
        return False

    @staticmethod
    def _spawn(number: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "conveyor.cli", *sys.argv[1:]]
        env = dict(os.environ, **{SIBLING_ENV: str(number)})
        return subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)

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
