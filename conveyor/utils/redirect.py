"""`worker_redirect_stdouts`: what tasks print becomes log lines, as in a Celery worker.

`redirect(level)` replaces sys.stdout and sys.stderr with a LoggingProxy that logs each
complete line to the ``conveyor.redirected`` logger at `level` (Celery's
worker_redirect_stdouts_level, WARNING), so a `print()` in a task reaches the worker's log
with its time, level and task, instead of an unbuffered terminal nobody reads.

The surprise to guard against is a loop: a handler that writes to the redirected stream
would log its own line again. The worker's handlers write to the stream as it was
(`LoggingProxy.original`), and a write made while this thread is already logging through
the proxy goes to the original stream too.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from typing import TextIO

from conveyor.core.errors import ConfigurationError

LOGGER = "conveyor.redirected"
_local = threading.local()


class LoggingProxy(io.TextIOBase):
    """A text stream whose lines are log records; `original` is the stream it replaced."""

    def __init__(self, logger: logging.Logger, level: int, original: TextIO) -> None:
        super().__init__()
        self.logger = logger
        self.level = level
        self.original = original
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if getattr(_local, "logging", False):  # a handler writing here: no loop
            return self.original.write(text)
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
        for line in lines:
            self._log(line)
        return len(text)

    def flush(self) -> None:
        """A line is logged once it ends: flushing a part of one (a handler's emit flushes
        its stream, `print(..., end="", flush=True)`) keeps it for the rest."""
        self.original.flush()

    def _log(self, line: str) -> None:
        if not line.strip():
            return
        _local.logging = True
        try:
            self.logger.log(self.level, line.rstrip())
        finally:
            _local.logging = False

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        """The original stream's descriptor (a subprocess given this stream writes there)."""
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")


def redirect(level: str | int = "WARNING") -> None:
    """Send what is written to sys.stdout and sys.stderr to the log at `level`."""
    number = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(number, int):
        raise ConfigurationError(
            f"worker_redirect_stdouts_level: {level!r} is not a logging level (DEBUG, INFO, "
            "WARNING, ERROR, CRITICAL)"
        )
    logger = logging.getLogger(LOGGER)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, LoggingProxy):
            stream = stream.original
        setattr(sys, name, LoggingProxy(logger, number, stream))
