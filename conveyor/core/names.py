"""The one queue-name validator every transport uses before any I/O.

Names are portable across every broker: each transport escapes them for its own
namespace (key prefixes, paths, table rows), so a valid name works everywhere.
"""

from __future__ import annotations

import re
from functools import lru_cache

from conveyor.core.errors import InvalidQueueName

MAX_LENGTH = 200
RESERVED_PREFIXES = ("amq.", "conveyor.", "zookeeper")
_ALLOWED = re.compile(r"[A-Za-z0-9_.\-]+")
_FIRST = re.compile(r"[A-Za-z0-9_]")

RULES = (
    "a queue name is 1 to 200 characters",
    "only letters, digits, '_', '-' and '.' are allowed",
    "the first character is a letter, a digit or '_'",
    "'..' is not allowed",
    "names starting with 'amq.', 'conveyor.' or 'zookeeper' are reserved",
)


@lru_cache(maxsize=4096)
def validate_queue_name(name: str) -> str:
    """Return `name` if it is a valid queue name, else raise InvalidQueueName citing the rule."""
    if not isinstance(name, str):
        raise InvalidQueueName(f"queue name must be a string, not {type(name).__name__}")
    if not 1 <= len(name) <= MAX_LENGTH:
        raise InvalidQueueName(f"invalid queue name {name[:40]!r}...: {RULES[0]}")
    if not _ALLOWED.fullmatch(name):
        bad = next(ch for ch in name if not _ALLOWED.fullmatch(ch))
        raise InvalidQueueName(f"invalid queue name {name!r}: {RULES[1]} (found {bad!r})")
    if not _FIRST.match(name):
        raise InvalidQueueName(f"invalid queue name {name!r}: {RULES[2]}")
    if ".." in name:
        raise InvalidQueueName(f"invalid queue name {name!r}: {RULES[3]}")
    if name.lower().startswith(RESERVED_PREFIXES):
        raise InvalidQueueName(f"invalid queue name {name!r}: {RULES[4]}")
    return name
