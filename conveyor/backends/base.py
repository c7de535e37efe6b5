"""The result-backend contract. ../CONFORMANCE.md (B1-B12) lists the clauses.

* `store` is atomic, and a ready state (SUCCESS, FAILURE, REVOKED) is never replaced by a
  non-ready one: a late duplicate execution cannot undo a success.
* `get` tells an unknown id (None) from a pending one.
* `wait` returns when the task is ready and reports every state change on the way.
* Counters (groups, chords) are atomic in the store.
* Records expire after `result_expires` seconds with no other process running.
* A result over the store's limit becomes a FAILURE record saying so; never a silent loss.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from conveyor.core.errors import ConfigurationError, DecodeError
from conveyor.core.url import URL

PENDING = "PENDING"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})


@dataclass
class ResultRecord:
    """Everything stored about one task id.

    For FAILURE, `result` is ``{"exc_type": ..., "exc_message": ..., "exc_module": ...}`` and
    `traceback` the formatted traceback text; nothing in it is ever imported or called.
    """

    task_id: str
    state: str
    result: Any = None
    traceback: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    parent_id: str | None = None
    group_id: str | None = None
    date_done: float | None = None

    @property
    def ready(self) -> bool:
        return self.state in READY_STATES

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> ResultRecord:
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError) as exc:
            raise DecodeError(f"malformed result record: {exc}") from None


@dataclass
class BackendOptions:
    """Options every backend understands, settable from the URL query string.

    result_expires: seconds a record lives after its last write (0 keeps it forever).
    connect_timeout: seconds to wait for a connection before BackendUnavailable.
    """

    result_expires: float = 86400.0
    connect_timeout: float = 5.0

    def validate(self) -> None:
        if self.result_expires < 0:
            raise ConfigurationError("result_expires must be 0 (never) or positive")
        if self.connect_timeout <= 0:
            raise ConfigurationError("connect_timeout must be positive")


OnMessage = Callable[[ResultRecord], None]


class ResultBackend(ABC):
    """Stores task states and results by task id."""

    Options: ClassVar[type[BackendOptions]] = BackendOptions
    max_value_size: ClassVar[int] = 64 * 1024 * 1024

    def __init__(self, url: URL, options: BackendOptions) -> None:
        self.url = url
        self.options = options

    @abstractmethod
    def store(self, record: ResultRecord) -> bool:
        """Write `record` atomically; False (and no write) if a ready state is already stored."""

    @abstractmethod
    def get(self, task_id: str) -> ResultRecord | None:
        """The stored record, or None when the id is unknown."""

    def get_many(self, task_ids: Iterable[str]) -> dict[str, ResultRecord | None]:
        return {task_id: self.get(task_id) for task_id in task_ids}

    @abstractmethod
    def wait(
        self, task_id: str, timeout: float | None, on_message: OnMessage | None = None
    ) -> ResultRecord:
        """Block until the task is ready, calling `on_message` for every new state.

        Raises conveyor.backends.base.ResultTimeout when `timeout` passes first.
        """

    @abstractmethod
    def forget(self, task_id: str) -> None:
        """Remove the record."""

    @abstractmethod
    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add `amount` to counter `key` (0 if new); return the new value."""

    def close(self) -> None:
        """Release connections."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


class ResultTimeout(TimeoutError):
    """`wait` reached its deadline before the task was ready."""

    def __init__(self, task_id: str, timeout: float | None) -> None:
        super().__init__(f"task {task_id} not ready after {timeout} s")
        self.task_id = task_id


def now() -> float:
    return time.time()
