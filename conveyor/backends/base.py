"""The result-backend contract. testing/CONFORMANCE.md (B1-B12) lists the clauses.

* `store` is atomic, and once a ready state (SUCCESS, FAILURE, REVOKED) is stored nothing
  replaces it: a late duplicate execution cannot undo a success (the first ready state wins).
* `get` tells an unknown id (None) from a pending one.
* `wait` returns when the task is ready and reports every state change on the way.
* Counters (groups, chords) are atomic in the store.
* Records expire after `result_expires` seconds with no other process running.
* A ready result over the store's limit becomes a FAILURE record saying so; never a silent
  loss. A non-ready record over the limit (a huge PROGRESS meta) raises `ResultTooLarge`
  and is not written, so it cannot turn a running task into a failed one.
* Client-library exceptions never escape: they become conveyor errors.
"""

from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from typing import Any, ClassVar, TypeVar

from conveyor.backends.errors import ResultTooLarge, describe_exception
from conveyor.core.errors import ConfigurationError, DecodeError, EncodeError
from conveyor.core.jsontext import compact_encoder
from conveyor.core.message import Message
from conveyor.core.transport import SameServer, check_namespace
from conveyor.core.url import URL

PENDING = "PENDING"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
T = TypeVar("T")


def _dataclass_dict(value: Any) -> dict[str, Any]:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_record_json = compact_encoder(default=_dataclass_dict, allow_nan=True)


@dataclass
class ResultRecord:
    """Everything stored about one task id.

    For FAILURE, `result` is ``{"exc_type": ..., "exc_message": ..., "exc_module": ...}`` and
    `traceback` the formatted traceback text; nothing in it is ever imported or called
    (conveyor.backends.errors.rebuild_exception is the safe way back to an exception).
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
        # The fields as they are (asdict would deep-copy the result first); a dataclass
        # inside the result still becomes a dict, as asdict made it.
        try:
            return _record_json(vars(self)).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise EncodeError(f"result of task {self.task_id!r} is not JSON: {exc}") from None

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
    timeout: seconds one operation may take before BackendUnavailable.
    poll_interval: longest pause between two reads of a polling `wait`.
    max_result_size: bytes; 0 means the store's own limit, a smaller value lowers it.
    namespace: a prefix of every key, table or path the backend creates (as the transport
        option of that name); the app passes the broker's when the backend URL names none.
    """

    result_expires: float = 86400.0
    connect_timeout: float = 5.0
    timeout: float = 10.0
    poll_interval: float = 0.5
    max_result_size: int = 0
    namespace: str = ""

    def validate(self) -> None:
        check_namespace(self.namespace)
        if self.result_expires < 0:
            raise ConfigurationError("result_expires must be 0 (never) or positive")
        for name in ("connect_timeout", "timeout", "poll_interval"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.max_result_size < 0:
            raise ConfigurationError("max_result_size must be 0 (the store's limit) or positive")


def namespaced(namespace: str, prefix: str) -> str:
    """A key prefix behind ``<namespace>:`` when there is a namespace (Redis, memcached)."""
    return f"{namespace}:{prefix}" if namespace else prefix


OnMessage = Callable[[ResultRecord], None]


class ResultBackend(ABC):
    """Stores task states and results by task id.

    The conformance suite reads the capabilities below; a clause needing one the backend
    lacks reports "n/a" with the reason.
    """

    Options: ClassVar[type[BackendOptions]] = BackendOptions
    # Capabilities: class attributes that an instance may refine for its URL (the SQL
    # backend is networked except on SQLite). Reading them does no I/O.
    #: Largest encoded record the store accepts, in bytes.
    max_value_size: int = 64 * 1024 * 1024
    #: The store is reached over a network (so it can be refused, unknown, unreachable).
    networked: bool = True
    #: The store checks credentials.
    authenticates: bool = True
    #: Several processes can share the store.
    crosses_processes: bool = True
    #: `wait` is pushed state changes by the store instead of polling it.
    pushes: bool = False

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

    def store_many(self, records: Sequence[ResultRecord]) -> list[bool]:
        """`store` each record, in order; what `store` returned for each.

        Here each store is atomic on its own, not the batch as a whole, and an error may
        leave the records before it stored. Backends override this to save round trips;
        the memory, Redis and SQL backends store the batch atomically (the worker relies
        on that to make a failure and the not-run rest of its chain visible together).
        """
        return [self.store(record) for record in records]

    def store_during(self, record: ResultRecord, action: Callable[[], T]) -> T:
        """`store(record)` and `action()`, both finished when this returns; `action`'s value.

        The default stores first. A backend may send the store, run `action`, then wait for
        the store's reply, so that the two round trips overlap: then a store that fails
        raises after `action` ran (the caller cannot tell it from a lost reply). A record
        that cannot be encoded raises before either starts.
        """
        self.store(record)
        return action()

    def store_pending_beside(
        self, record: ResultRecord, offer: SameServer, queue: str, message: Message
    ) -> bool | None:
        """Store the PENDING `record` of a task in the round trip that publishes its
        `message` to `queue` through `offer` (a transport's SameServer), when this backend
        keeps its records on that server.

        None: the offer does not fit (another server, or a backend that cannot use one) or
        its connection failed; the caller stores and publishes on its general path. True:
        both are done. False: the message went out, the record did not; the caller stores
        it with `store`. The default is None. A record that cannot be encoded raises before
        anything is sent.
        """
        return None

    @abstractmethod
    def wait(
        self, task_id: str, timeout: float | None, on_message: OnMessage | None = None
    ) -> ResultRecord:
        """Block until the task is ready, calling `on_message` for every new state.

        `on_message` sees each distinct record once, in order, the ready one included.
        Raises conveyor.backends.base.ResultTimeout when `timeout` passes first.
        """

    @abstractmethod
    def forget(self, task_id: str) -> None:
        """Remove the record."""

    @abstractmethod
    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add `amount` to counter `key` (0 if new); return the new value.

        Counters expire like records, `result_expires` after their last change.
        """

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> ResultBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # -- helpers for implementations --------------------------------------------------

    @property
    def value_limit(self) -> int:
        """The size limit in force: the store's, or the lower `max_result_size` option."""
        configured = self.options.max_result_size
        return min(configured, self.max_value_size) if configured else self.max_value_size

    def encode(self, record: ResultRecord) -> tuple[ResultRecord, bytes]:
        """The record to write and its bytes, after the size check (see `too_large`)."""
        data = record.to_bytes()
        if len(data) <= self.value_limit:
            return record, data
        return self.too_large(record, len(data), self.value_limit)

    def too_large(
        self, record: ResultRecord, size: int, limit: int | None
    ) -> tuple[ResultRecord, bytes]:
        """What to write instead of `record`, `size` bytes over `limit` (None: the server's).

        A ready record becomes a FAILURE naming ResultTooLarge; a non-ready one raises
        ResultTooLarge (nothing is written), so a huge PROGRESS cannot end a running task.
        """
        where = f"the {limit} byte limit" if limit else "the server's item size limit"
        problem = ResultTooLarge(
            f"result of task {record.task_id} is {size} bytes, over {where} of "
            f"{type(self).__name__}"
        )
        if not record.ready:
            raise problem
        failure = replace(
            record,
            state=FAILURE,
            result=describe_exception(problem),
            traceback=None,
            meta={},
            date_done=record.date_done or now(),
        )
        data = failure.to_bytes()
        if len(data) > (limit or self.value_limit):
            raise problem
        return failure, data

    def expires_at(self) -> float | None:
        """The wall-clock time a record written now expires, or None for never."""
        expires = self.options.result_expires
        return now() + expires if expires else None

    def poll_wait(
        self, task_id: str, timeout: float | None, on_message: OnMessage | None
    ) -> ResultRecord:
        """`wait` for stores that cannot push: read with a short backoff up to poll_interval."""
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = Watch(on_message)
        pause = 0.005
        while True:
            record = self.get(task_id)
            if record is not None and record != watch.last:
                if watch.saw(record):
                    return record
                pause = 0.005  # a task that just moved may move again soon
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ResultTimeout(task_id, timeout)
            pause = min(pause * 2, self.options.poll_interval)
            time.sleep(pause if remaining is None else min(pause, remaining))


class Watch:
    """Reports each distinct record once to `on_message`; tells when one is ready."""

    def __init__(self, on_message: OnMessage | None) -> None:
        self.on_message = on_message
        self.last: ResultRecord | None = None

    def saw(self, record: ResultRecord) -> bool:
        if record != self.last:
            self.last = record
            if self.on_message is not None:
                self.on_message(record)
        return record.ready


READY_MARK, NOT_READY_MARK = b"R", b"N"


def marked(record: ResultRecord, data: bytes) -> bytes:
    """`data` behind one marker byte telling whether the record is ready.

    Key-value stores keep records this way so that an atomic check of the stored state
    (a Lua GETRANGE, a gets/cas loop) needs no JSON decoding.
    """
    return (READY_MARK if record.ready else NOT_READY_MARK) + data


def unmarked(value: bytes | str | None) -> ResultRecord | None:
    """The record behind a marker byte; None for None."""
    return None if value is None else ResultRecord.from_bytes(value[1:])


def bounded_key(prefix: str, name: str, max_bytes: int, *, plain_ascii: bool = False) -> str:
    """`prefix + name` when it fits the store's key rules, else `prefix` and a SHA-256 of name.

    The rules: at most `max_bytes` UTF-8 bytes, printable, and with `plain_ascii` also ASCII
    without spaces (memcached's text protocol).
    """
    key = prefix + name
    fits = name.isprintable() and len(key.encode(errors="replace")) <= max_bytes
    if fits and plain_ascii:
        fits = name.isascii() and " " not in name
    if fits:
        return key
    digest = hashlib.sha256(name.encode(errors="surrogatepass")).hexdigest()
    return f"{prefix}#sha256:{digest}"


def call_idempotent(
    operation: Callable[[], T],
    transient: tuple[type[BaseException], ...],
    permanent: tuple[type[BaseException], ...] = (),
) -> T:
    """Run an operation that is safe to repeat, once more after a `transient` error.

    A pooled connection may have died since its last use (a server restart); the second
    attempt gets a fresh one. Errors in `permanent` (bad credentials) are never repeated.
    """
    try:
        return operation()
    except permanent:
        raise
    except transient:
        time.sleep(0.05)
        return operation()


class ResultTimeout(TimeoutError):
    """`wait` reached its deadline before the task was ready."""

    def __init__(self, task_id: str, timeout: float | None) -> None:
        super().__init__(f"task {task_id} not ready after {timeout} s")
        self.task_id = task_id


def now() -> float:
    return time.time()
