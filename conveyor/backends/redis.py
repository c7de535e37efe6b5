"""The Redis result backend (redis-py): atomic stores by Lua script, `wait` by pub/sub push.

A record is one string key, ``conveyor-result:<task id>`` (long ids hashed), holding one
marker byte (``R`` for a ready state, ``N`` otherwise) and then the JSON record. The store
script reads the marker, refuses to overwrite a ready record, SETs with a PX expiry and
PUBLISHes the value on the task's channel, all in one atomic step. `wait` subscribes first,
then reads, then listens, so no state written in between is missed; it never polls. A
result already ready is read first and returned without subscribing, and subscription
connections are kept for later waits rather than opened for each.

Client retries are off (a retried INCRBY could count twice); idempotent reads and stores
retry once here, on a fresh connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from importlib.resources import files
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.exceptions import NoScriptError
from redis.retry import Retry

from conveyor.backends.base import (
    BackendOptions,
    OnMessage,
    ResultBackend,
    ResultRecord,
    ResultTimeout,
    Watch,
    bounded_key,
    call_idempotent,
    marked,
    namespaced,
    unmarked,
)
from conveyor.clients.redis import endpoint_of
from conveyor.clients.redis_held import HeldConnection
from conveyor.core.errors import (
    AuthenticationFailed,
    BackendError,
    BackendUnavailable,
    BrokerUnavailable,
    ConfigurationError,
)
from conveyor.core.message import Message
from conveyor.core.transport import SameServer
from conveyor.core.url import URL, redact

T = TypeVar("T")
RESULT_PREFIX = "conveyor-result:"
CHANNEL_PREFIX = "conveyor-result-events:"
COUNTER_PREFIX = "conveyor-counter:"
_MAX_KEY = 1024
_IDLE_PUBSUBS = 8  # subscription connections kept open for later waits
_TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
_AUTH_REPLIES = ("WRONGPASS", "NOAUTH", "invalid password", "invalid username-password")


def _key(prefix: str, name: str) -> str:
    """Keys and channels: binary-safe in Redis, but long or unprintable names are hashed."""
    return bounded_key(prefix, name, _MAX_KEY)


_STORE = files("conveyor.backends").joinpath("redis_store.lua").read_text(encoding="utf-8")
"""The store script (redis_store.lua, package data): atomic, never over a ready record."""


@contextmanager
def translated(what: str, url: URL) -> Iterator[None]:
    """Translate redis-py errors into conveyor's, naming the redacted URL."""
    try:
        yield
    except redis.AuthenticationError as exc:
        raise AuthenticationFailed(f"{what} on {url}: {redact(str(exc))}") from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable(f"{what} on {url}: {redact(str(exc))}") from exc
    except redis.ResponseError as exc:
        text = redact(str(exc))
        if any(reply in text for reply in _AUTH_REPLIES):
            raise AuthenticationFailed(f"{what} on {url}: {text}") from exc
        raise BackendError(f"{what} on {url}: {text}") from exc
    except redis.RedisError as exc:
        raise BackendError(f"{what} on {url}: {redact(str(exc))}") from exc


class RedisBackend(ResultBackend):
    """Results in Redis; `wait` is pushed every state change through pub/sub."""

    max_value_size: int = 512 * 1024 * 1024 - 1  # proto-max-bulk-len, less the marker
    pushes: bool = True

    def __init__(self, url: URL, options: BackendOptions) -> None:
        super().__init__(url, options)
        if len(url.hosts) > 1:
            raise ConfigurationError(f"{url}: the Redis backend takes one host")
        self._client = redis.Redis.from_url(
            url.without_query().unredacted(),
            socket_connect_timeout=options.connect_timeout,
            socket_timeout=options.timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )
        self._store_script = self._client.register_script(_STORE)
        self._held = HeldConnection()
        self._endpoint = endpoint_of(self._client)  # names this database (no I/O)
        self._ttl_ms = round(options.result_expires * 1000)  # 0: records never expire
        self._idle_lock = threading.Lock()
        self._idle_pubsubs: list[PubSub] = []
        self._results = namespaced(options.namespace, RESULT_PREFIX)
        self._channels = namespaced(options.namespace, CHANNEL_PREFIX)
        self._counters = namespaced(options.namespace, COUNTER_PREFIX)

    # -- errors ----------------------------------------------------------------------

    def _errors(self, what: str) -> AbstractContextManager[None]:
        return translated(what, self.url)

    def _idempotent(self, what: str, operation: Callable[[], T]) -> T:
        with self._errors(what):
            return call_idempotent(operation, _TRANSIENT, (redis.AuthenticationError,))

    # -- the contract ----------------------------------------------------------------

    def _store_args(self, record: ResultRecord) -> tuple[str, list[bytes | str | int]]:
        """The store script's KEYS[1] and ARGV, encoded and size-checked."""
        record, data = self.encode(record)
        channel = _key(self._channels, record.task_id)
        return _key(self._results, record.task_id), [marked(record, data), self._ttl_ms, channel]

    def store(self, record: ResultRecord) -> bool:
        return self.store_many([record])[0]

    def store_many(self, records: Sequence[ResultRecord]) -> list[bool]:
        """Every record encoded first (an EncodeError stores nothing), then one script call
        for them all: one round trip, each record's store atomic."""
        calls = [self._store_args(record) for record in records]
        if not calls:
            return []
        keys = [key for key, _ in calls]
        command = ("EVALSHA", self._store_script.sha, len(keys), *keys)
        command += tuple(arg for _, call_args in calls for arg in call_args)
        return [bool(reply) for reply in self._idempotent("store", lambda: self._run(command))]

    def _run(self, command: tuple[Any, ...]) -> Any:
        """One command on the held connection; the store script is loaded on a miss (a
        restarted or flushed server) and the command sent again."""
        (reply,) = self._held.send_all(self._client, [command])
        if isinstance(reply, NoScriptError):
            self._client.script_load(_STORE)
            (reply,) = self._held.send_all(self._client, [command])
        if isinstance(reply, Exception):
            raise reply
        return reply

    def pending_command(self, record: ResultRecord) -> tuple[Any, ...]:
        """The Redis command that records a task being sent as PENDING (`record`), for
        sending beside the publish on this backend's server (`store_pending_beside`).

        A plain SET NX rather than the store script: PENDING never replaces anything
        stored, and announcing it on the channel is not needed, since a waiter reads the
        record before it subscribes and then hears of every later state. Its reply is OK,
        None (something was stored already) or an error, after which `store` must be
        called. Encoding errors raise here."""
        record, data = self.encode(record)
        expiry = ("PX", self._ttl_ms) if self._ttl_ms else ()
        return ("SET", _key(self._results, record.task_id), marked(record, data), *expiry, "NX")

    def store_pending_beside(
        self, record: ResultRecord, offer: SameServer, queue: str, message: Message
    ) -> bool | None:
        """`pending_command` sent ahead of the publish, when the offer is for this backend's
        database (equal endpoints, compared without I/O)."""
        if offer.endpoint != self._endpoint:
            return None
        command = self.pending_command(record)
        try:
            (stored,) = offer.publish_after([command], queue, message)
        except BrokerUnavailable:  # and ConnectionLost: the caller resends on its own path
            return None
        return not isinstance(stored, Exception)

    def store_during(self, record: ResultRecord, action: Callable[[], T]) -> T:
        """The store script is sent on a pooled connection, `action` runs, then the reply is
        read: one round trip of waiting instead of two. Without a usable connection it
        stores first, like the default; with the script not loaded it stores again after."""
        key, args = self._store_args(record)
        pool = self._client.connection_pool
        try:
            connection = pool.get_connection()
        except (redis.RedisError, OSError):
            connection = None
        if connection is not None:
            try:
                connection.send_command("EVALSHA", self._store_script.sha, 1, key, *args)
            except (redis.RedisError, OSError):
                connection.disconnect()
                pool.release(connection)
                connection = None
        if connection is None:
            self.store(record)
            return action()
        try:
            value = action()
        except BaseException:
            with suppress(Exception):  # the store finished (or its connection is dropped)
                self._store_reply(connection)
            raise
        if not self._store_reply(connection):
            self.store(record)
        return value

    def _store_reply(self, connection: Any) -> bool:
        """Read a sent store's reply and release the connection; False if the script was
        not loaded (nothing was stored)."""
        pool = self._client.connection_pool
        try:
            with self._errors("store"):
                try:
                    connection.read_response()
                except NoScriptError:
                    return False
            return True
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def get(self, task_id: str) -> ResultRecord | None:
        key = _key(self._results, task_id)
        return unmarked(self._idempotent("get", lambda: self._run(("GET", key))))

    def get_many(self, task_ids: Iterable[str]) -> dict[str, ResultRecord | None]:
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return {}
        keys = [_key(self._results, task_id) for task_id in ids]
        values = self._idempotent("get_many", lambda: self._run(("MGET", *keys)))
        return {task_id: unmarked(value) for task_id, value in zip(ids, values, strict=True)}

    def forget(self, task_id: str) -> None:
        self._idempotent("forget", lambda: self._client.delete(_key(self._results, task_id)))

    def incr(self, key: str, amount: int = 1) -> int:
        """INCRBY and PEXPIRE in one MULTI; not retried, since a repeat could count twice."""
        with self._errors("incr"):
            pipe = self._client.pipeline(transaction=True)
            name = _key(self._counters, key)
            pipe.incrby(name, amount)
            if self._ttl_ms:
                pipe.pexpire(name, self._ttl_ms)
            return int(pipe.execute()[0])

    def wait(
        self, task_id: str, timeout: float | None, on_message: OnMessage | None = None
    ) -> ResultRecord:
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = Watch(on_message)
        # Most waits find the result already stored: one GET, no subscription. (An outage
        # here is left to the subscribing loop below, which retries it.)
        with suppress(BackendUnavailable):
            record = self.get(task_id)
            if record is not None and watch.saw(record):
                return record
        failing_since: float | None = None
        subscribed: list[bool] = [False]
        pause = 0.05
        while True:
            try:
                with self._errors("wait"):
                    return self._listen(task_id, deadline, watch, timeout, subscribed)
            except BackendUnavailable:
                # The subscription broke (a server restart, a cut connection): subscribe
                # again and re-read, with backoff, until `options.timeout` seconds without
                # a working subscription or the deadline.
                now = time.monotonic()
                if subscribed[0] or failing_since is None:
                    failing_since, pause, subscribed[0] = now, 0.05, False
                past_deadline = deadline is not None and now >= deadline
                if past_deadline or now - failing_since > self.options.timeout:
                    raise
                time.sleep(min(pause, self._slice(deadline)))
                pause = min(pause * 2, 1.0)

    def _listen(
        self,
        task_id: str,
        deadline: float | None,
        watch: Watch,
        timeout: float | None,
        subscribed: list[bool],
    ) -> ResultRecord:
        channel = _key(self._channels, task_id).encode(errors="surrogatepass")
        pubsub = self._take_pubsub()
        done = False
        try:
            pubsub.subscribe(channel)
            # Wait for the confirmation: only then is every later PUBLISH sure to reach us.
            message = pubsub.get_message(timeout=self._slice(deadline))
            while not self._about(message, "subscribe", channel):
                if deadline is not None and time.monotonic() >= deadline:
                    raise ResultTimeout(task_id, timeout)
                message = pubsub.get_message(timeout=self._slice(deadline))
            subscribed[0] = True
            record = self.get(task_id)
            while record is None or not watch.saw(record):
                if deadline is not None and time.monotonic() >= deadline:
                    raise ResultTimeout(task_id, timeout)
                message = pubsub.get_message(timeout=self._slice(deadline))
                record = (
                    unmarked(message["data"]) if self._about(message, "message", channel) else None
                )
            done = True
            return record
        finally:
            self._give_back_pubsub(pubsub, channel, done)

    def _take_pubsub(self) -> PubSub:
        """An idle subscription connection, or a new one."""
        with self._idle_lock:
            if self._idle_pubsubs:
                return self._idle_pubsubs.pop()
        return self._client.pubsub()

    def _give_back_pubsub(self, pubsub: PubSub, channel: bytes, reusable: bool) -> None:
        """Keep a connection that ended cleanly for the next `wait` (its messages about
        other channels are skipped there); close one that failed or timed out."""
        if reusable:
            with suppress(redis.RedisError, OSError):
                pubsub.unsubscribe(channel)
                with self._idle_lock:
                    if len(self._idle_pubsubs) < _IDLE_PUBSUBS:
                        self._idle_pubsubs.append(pubsub)
                        return
        pubsub.close()

    @staticmethod
    def _slice(deadline: float | None) -> float:
        """How long one blocking read may take: to the deadline, at most 5 s."""
        return 5.0 if deadline is None else max(0.0, min(5.0, deadline - time.monotonic()))

    @staticmethod
    def _about(message: dict[str, Any] | None, kind: str, channel: bytes) -> bool:
        """Whether `message` is of `kind` on `channel` (not left over from an earlier wait)."""
        return message is not None and message["type"] == kind and message["channel"] == channel

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle_pubsubs = self._idle_pubsubs, []
        with self._errors("close"):
            for pubsub in idle:
                pubsub.close()
            self._held.close()
            self._client.close()
