"""Loggers for client libraries that log credentials (kazoo logs its auth packet at DEBUG).

Such a library takes the logger to use; it gets one whose records have every given secret
replaced by ``***`` before any handler sees them. A filter on the logger itself, not on a
handler: records a library makes on this logger pass through it, and the records then
propagate to the usual handlers already clean.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

REDACTED = "***"
_lock = threading.Lock()
_loggers: dict[tuple[str, frozenset[str]], logging.Logger] = {}


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with each secret replaced by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(secret in text for secret in self.secrets):
            for secret in self.secrets:
                text = text.replace(secret, REDACTED)
            record.msg, record.args = text, None
        return True


def redacting_logger(name: str, secrets: Iterable[str]) -> logging.Logger:
    """A child logger of `name` that redacts `secrets`: one per distinct set of secrets
    (loggers live as long as the process, so reconnecting clients share theirs)."""
    key = (name, frozenset(s for s in secrets if s))
    with _lock:
        logger = _loggers.get(key)
        if logger is None:
            logger = logging.getLogger(name).getChild(f"redacted{len(_loggers)}")
            logger.addFilter(RedactingFilter(key[1]))
            _loggers[key] = logger
        return logger
