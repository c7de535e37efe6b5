"""Reading a control broadcast: one malformed message must not reach a command handler.

The control channel is shared by every worker, so one bad broadcast (a foreign producer, a
version skew, a typo in a script) would otherwise stop ping, inspect and revoke on all of
them. Everything a handler relies on is checked here; a bad message is a `ValueError` that
names the bad part, which the listener logs and drops.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ControlRequest:
    command: str
    arguments: dict[str, Any]
    reply_to: str | None
    #: The hostnames the request is for; None: every worker.
    destination: list[str] | None = None


def parse_control(body: bytes) -> ControlRequest:
    """The request in `body`; raises ValueError naming what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"body is a JSON {type(data).__name__}, not an object")
    command = data.get("command")
    if not isinstance(command, str):
        raise ValueError(f"'command' must be a string, got {command!r}")
    arguments = data.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise ValueError(f"'arguments' must be an object, got {arguments!r}")
    reply_to = data.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, str):
        raise ValueError(f"'reply_to' must be a string or null, got {reply_to!r}")
    destination = data.get("destination")
    if destination is not None and (
        not isinstance(destination, list) or not all(isinstance(h, str) for h in destination)
    ):
        raise ValueError(f"'destination' must be a list of hostnames or null, got {destination!r}")
    return ControlRequest(command, arguments, reply_to, destination)


def task_ids(arguments: dict[str, Any]) -> list[str]:
    """The 'ids' argument of revoke: a list of task id strings."""
    ids = arguments.get("ids", [])
    if not isinstance(ids, list) or not all(isinstance(one, str) for one in ids):
        raise ValueError(f"'ids' must be a list of task id strings, got {ids!r}")
    return ids
