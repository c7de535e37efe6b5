"""One pika connection whose I/O loop runs in its own thread, and its error translation.

pika connections are not thread-safe, so everything that touches one runs on its loop
thread. Other threads hand work over with `submit`/`call` and wait on a Future. Because the
loop never waits for user code, heartbeats are answered while a task runs for minutes, and
acks may come from any thread.

Channels are opened on demand, one per role ("publish", "consume", ...). When the broker
closes a channel (a failed declaration, say) or the connection drops, every Future still
waiting on it fails with a conveyor error, so no caller waits forever.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import pika
import pika.channel
import pika.exceptions
from pika.adapters.utils.connection_workflow import (
    AMQPConnectionWorkflowFailed,
    AMQPConnectorException,
)

from conveyor.core.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ConnectionLost,
    ConveyorError,
)
from conveyor.transports.amqp import frames

log = logging.getLogger("conveyor.amqp")
T = TypeVar("T")

# work(channel, future): runs on the loop thread and completes `future`, now or later.
Work = Callable[[pika.channel.Channel, "Future[Any]"], None]
ChannelSetup = Callable[[pika.channel.Channel, Callable[[], None]], None]

_AUTH_ERRORS = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)


def translate(
    exc: BaseException, where: str, network: type[BrokerUnavailable] = ConnectionLost
) -> ConveyorError:
    """The conveyor error for a pika (or socket) exception raised while doing `where`.

    A network failure is `network`: ConnectionLost in mid-operation (its outcome unknown),
    BrokerUnavailable while connecting (nothing was done).
    """
    if isinstance(exc, ConveyorError):
        return exc
    exc = _root_cause(exc)
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError):
        return AuthenticationFailed(
            f"{where}: the broker refused access to the virtual host; it may not exist, or "
            f"the user may lack permissions on it ({exc})"
        )
    if isinstance(exc, _AUTH_ERRORS):
        return AuthenticationFailed(f"{where}: the broker refused the credentials ({exc})")
    if isinstance(exc, pika.exceptions.ConnectionClosedByBroker) and exc.reply_code == 403:
        return AuthenticationFailed(f"{where}: access refused ({exc.reply_text})")
    if isinstance(exc, pika.exceptions.ConnectionBlockedTimeout):
        return ConnectionLost(
            f"{where}: the broker blocked the connection too long (memory or disk alarm)"
        )
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
        return BrokerError(f"{where}: the broker refused: {exc.reply_code} {exc.reply_text}")
    if isinstance(exc, (pika.exceptions.AMQPError, AMQPConnectorException, OSError)):
        return network(f"{where}: {type(exc).__name__}: {exc}")
    return BrokerError(f"{where}: {type(exc).__name__}: {exc}")


def _root_cause(exc: BaseException) -> BaseException:
    """The exception pika's connection workflow wrapped (often with an empty message)."""
    while True:
        if isinstance(exc, AMQPConnectionWorkflowFailed) and exc.exceptions:
            exc = exc.exceptions[-1]
        elif isinstance(getattr(exc, "exception", None), BaseException):
            exc = exc.exception  # type: ignore[attr-defined]
        elif (
            type(exc) is pika.exceptions.AMQPConnectionError
            and exc.args
            and isinstance(exc.args[0], BaseException)
        ):
            exc = exc.args[0]
        else:
            return exc


class Link:
    """A SelectConnection running its ioloop in a daemon thread.

    `on_lost(role_or_None)` is called on the loop thread when a channel (its role) or the
    whole connection (None) goes away, so owners can drop state tied to it.
    """

    def __init__(
        self,
        params: pika.ConnectionParameters,
        timeout: float,
        setups: dict[str, ChannelSetup],
        on_lost: Callable[[str | None], None],
    ) -> None:
        self._setups = setups
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._pending: dict[str | None, set[Future[Any]]] = {}
        self._channels: dict[str, pika.channel.Channel] = {}
        self._opening: dict[str, list[Callable[[pika.channel.Channel], None]]] = {}
        self._alive = False
        self._soon_lock = threading.Lock()
        self._soon: list[tuple[str, Work, Future[Any]]] = []
        self._soon_scheduled = False
        self._opened = threading.Event()
        self._error: BaseException | None = None
        where = f"connect to {params.host}:{params.port}"
        self._conn = frames.connection_class(
            params,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_close,
        )
        self._thread = threading.Thread(
            target=self._run, name=f"conveyor-amqp-{params.host}", daemon=True
        )
        self._thread.start()
        if not self._opened.wait(timeout):
            self._stop_loop()
            raise BrokerUnavailable(f"{where}: no connection within {timeout:.1f} s")
        if self._error is not None:
            raise translate(self._error, where, network=BrokerUnavailable)

    # -- loop thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._conn.ioloop.start()
        except Exception:  # the loop must never die silently: fail every waiter
            log.exception("AMQP I/O loop crashed")
            self._mark_dead(ConnectionLost("the AMQP I/O loop crashed"))

    def _on_open(self, _conn: object) -> None:
        self._alive = True
        self._opened.set()

    def _on_open_error(self, _conn: object, exc: BaseException) -> None:
        self._error = exc
        self._opened.set()
        self._conn.ioloop.stop()

    def _on_close(self, _conn: object, reason: BaseException) -> None:
        self._mark_dead(translate(reason, "AMQP connection"))
        self._conn.ioloop.stop()

    def _mark_dead(self, error: ConveyorError) -> None:
        with self._lock:
            self._alive = False
            pending = [f for futures in self._pending.values() for f in futures]
            self._pending.clear()
        self._channels.clear()
        self._opening.clear()
        for future in pending:
            _fail(future, error)
        self._on_lost(None)

    def _on_channel_close(
        self, role: str, channel: pika.channel.Channel, reason: Exception
    ) -> None:
        if self._channels.get(role) is channel:
            del self._channels[role]
        else:  # closed while being set up: its waiters' futures fail just below
            self._opening.pop(role, None)
        with self._lock:
            pending = self._pending.pop(role, set())
        error = translate(reason, f"AMQP channel {role!r}")
        for future in pending:
            _fail(future, error)
        self._on_lost(role)

    def _with_channel(self, role: str, then: Callable[[pika.channel.Channel], None]) -> None:
        channel = self._channels.get(role)
        if channel is not None and channel.is_open:
            then(channel)
            return
        waiting = self._opening.get(role)
        if waiting is not None:
            waiting.append(then)
            return
        self._opening[role] = [then]

        def opened(channel: pika.channel.Channel) -> None:
            channel.add_on_close_callback(
                lambda ch, reason: self._on_channel_close(role, ch, reason)
            )
            self._setups.get(role, _no_setup)(channel, lambda: ready(channel))

        def ready(channel: pika.channel.Channel) -> None:
            self._channels[role] = channel
            for waiter in self._opening.pop(role, []):
                waiter(channel)

        self._conn.channel(on_open_callback=opened)

    def channel(self, role: str) -> pika.channel.Channel | None:
        """The open channel for `role`, or None (loop thread, or a racy peek elsewhere)."""
        return self._channels.get(role)

    # -- any thread ----------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._alive

    def submit(self, role: str, work: Work) -> Future[Any]:
        """Run `work(channel, future)` on the loop thread with the open channel for `role`."""
        future = self._register(role)
        self._conn.ioloop.add_callback_threadsafe(lambda: self._start(role, work, future))
        return future

    def submit_soon(self, role: str, work: Work) -> Future[Any]:
        """`submit`, sharing one wake-up of the loop with the other `submit_soon` calls made
        before the loop got to them, and their frames' writes (`corked`).

        Waking the loop costs a socket write and a thread switch, more than a publish
        itself: a burst of pipelined publishes pays it once per burst, not once each.
        """
        future = self._register(role)
        with self._soon_lock:
            self._soon.append((role, work, future))
            if self._soon_scheduled:
                return future
            self._soon_scheduled = True
        self._conn.ioloop.add_callback_threadsafe(self._run_soon)
        return future

    def _run_soon(self) -> None:
        with self._soon_lock:
            batch, self._soon = self._soon, []
            self._soon_scheduled = False
        with self.corked():
            for role, work, future in batch:
                self._start(role, work, future)

    def _register(self, role: str) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if not self._alive:
                raise ConnectionLost("the AMQP connection is closed")
            self._pending.setdefault(role, set()).add(future)
        future.add_done_callback(lambda f: self._forget(role, f))
        return future

    def _start(self, role: str, work: Work, future: Future[Any]) -> None:
        """On the loop thread: run `work` once the channel for `role` is open."""
        if future.done():
            return

        def run(channel: pika.channel.Channel) -> None:
            try:
                work(channel, future)
            except Exception as exc:
                _fail(future, translate(exc, f"AMQP {role}"))

        try:
            self._with_channel(role, run)
        except Exception as exc:
            _fail(future, translate(exc, f"AMQP {role}"))

    def call(self, role: str, work: Work, timeout: float) -> Any:
        """`submit` and wait; a reply that does not come within `timeout` is ConnectionLost."""
        future = self.submit(role, work)
        try:
            return future.result(timeout)
        except FutureTimeout:
            _fail(future, ConnectionLost(f"no reply from the broker within {timeout:.1f} s"))
            return future.result()

    def corked(self) -> contextlib.AbstractContextManager[None]:
        """On the loop thread: what the block sends leaves in few writes, sent at once."""
        return self._conn.corked()

    def later(self, action: Callable[[], None]) -> bool:
        """Run `action` on the loop thread without waiting; False if the link is dead."""
        if not self._alive:
            return False
        self._conn.ioloop.add_callback_threadsafe(action)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Close the connection after the work already handed over (acks included) ran."""
        if self._thread.is_alive():
            self._conn.ioloop.add_callback_threadsafe(self._close_now)
            self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop_loop()

    def _close_now(self) -> None:
        if self._conn.is_open:
            self._conn.close()
        elif not self._conn.is_closing:
            self._conn.ioloop.stop()

    def _stop_loop(self) -> None:
        self._conn.ioloop.add_callback_threadsafe(self._conn.ioloop.stop)
        self._thread.join(1.0)

    def _forget(self, role: str, future: Future[Any]) -> None:
        with self._lock:
            self._pending.get(role, set()).discard(future)


def _no_setup(_channel: pika.channel.Channel, ready: Callable[[], None]) -> None:
    ready()


def _fail(future: Future[Any], error: BaseException) -> None:
    if not future.done():
        with contextlib.suppress(Exception):  # InvalidStateError: it completed meanwhile
            future.set_exception(error)


def resolve(future: Future[Any], value: Any) -> None:
    """Complete `future` unless it already failed (a timeout, a lost channel)."""
    if not future.done():
        with contextlib.suppress(Exception):  # InvalidStateError: it failed meanwhile
            future.set_result(value)


def reply(future: Future[Any], value: Callable[[Any], Any] = lambda frame: None) -> Any:
    """A pika callback that completes `future` with `value(frame)`."""
    return lambda frame: resolve(future, value(frame))


def connect(
    candidates: Sequence[pika.ConnectionParameters],
    timeout: float,
    setups: dict[str, ChannelSetup],
    on_lost: Callable[[str | None], None],
) -> Link:
    """A Link to the first candidate host that answers, tried in order.

    Credentials refused by one host are refused by all: that raises at once.
    """
    errors: list[str] = []
    for params in candidates:
        try:
            return Link(params, timeout, setups, on_lost)
        except AuthenticationFailed:
            raise
        except BrokerUnavailable as exc:
            errors.append(str(exc))
    raise BrokerUnavailable("cannot reach the AMQP broker: " + "; ".join(errors))
