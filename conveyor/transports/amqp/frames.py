"""PRIVATE HOOKS OF PIKA: the only module of conveyor that uses pika's private names.

pika buffers each frame (method, header, body) on its own, its transport sends every buffer
with its own send(2), and only on the loop's next turn, when the socket reports writable.
`BatchingConnection` joins a message's frames into one buffer; inside `corked()` (a batch of
publishes or acks) everything the block sends is joined into buffers of about WRITE_SIZE,
each sent right away on a plaintext socket (TLS keeps pika's path). The same bytes in the same
order, with a syscall per 256 KB instead of three per message, and no loop turn between a
publish and its confirm.

It overrides and calls names that pika does not promise to keep: the connection's
`_output_marshaled_frames`, `_adapter_emit_data` and `_transport`, and the plaintext
transport class `_AsyncPlaintextTransport` with its `_on_socket_writable`.
pyproject.toml caps pika below 2. `connection_class` checks the hooks once, when this module
is imported; if any is missing it logs one line and gives `PublicConnection`, pika's own
SelectConnection with a `corked()` that does nothing: correct, only slower.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pika

try:
    from pika.adapters.utils.io_services_utils import _AsyncPlaintextTransport
except ImportError:  # a pika that moved or renamed it: the public path below
    _AsyncPlaintextTransport = None

log = logging.getLogger("conveyor.amqp")

# Output is handed to the socket in buffers of about this size: big enough that a batch of
# small messages costs a few syscalls, small enough that the broker starts on a long batch
# while the rest is being marshalled, and that large messages are not copied whole.
WRITE_SIZE = 256 * 1024

CONNECTION_HOOKS = ("_output_marshaled_frames", "_adapter_emit_data")
TRANSPORT_HOOKS = ("_on_socket_writable", "get_write_buffer_size")  # the latter is public


class PublicConnection(pika.SelectConnection):
    """pika's SelectConnection as it is; `corked()` exists so callers need not care."""

    @contextlib.contextmanager
    def corked(self) -> Iterator[None]:
        yield


class BatchingConnection(PublicConnection):
    """A SelectConnection that writes frames in few, large buffers, and at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._corked = False
        self._pending: list[bytes] = []
        self._pending_size = 0
        super().__init__(*args, **kwargs)

    @contextlib.contextmanager
    def corked(self) -> Iterator[None]:
        """Hold back what is sent inside the block, then send it (loop thread only)."""
        self._corked = True
        try:
            yield
        finally:
            self._corked = False
            self._write_pending(now=True)

    def _output_marshaled_frames(self, marshaled_frames: Sequence[bytes]) -> None:
        pending = self._pending
        for frame in marshaled_frames:
            pending.append(frame)
            self._pending_size += len(frame)
            self.bytes_sent += len(frame)
            if self._pending_size >= WRITE_SIZE:
                self._write_pending(now=self._corked)
        self.frames_sent += len(marshaled_frames)
        if not self._corked:
            self._write_pending(now=False)

    def _write_pending(self, now: bool) -> None:
        """Hand what is pending to the transport; `now`: send it at once (plaintext), not
        on the loop's next turn."""
        if not self._pending_size:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if self.is_closed:
            return
        self._adapter_emit_data(data)
        transport: Any = getattr(self, "_transport", None)  # None: pika's loop sends it
        plaintext = isinstance(transport, _AsyncPlaintextTransport)
        if now and plaintext and transport.get_write_buffer_size():
            transport._on_socket_writable()  # sends what it can, keeps the rest for the loop


def missing_hooks(connection: type, transport: type | None) -> list[str]:
    """The private names `BatchingConnection` needs that `connection` (a pika connection
    class) or `transport` (pika's plaintext transport class, None if not found) lack."""
    missing = [name for name in CONNECTION_HOOKS if not callable(getattr(connection, name, None))]
    if transport is None:
        missing.append("_AsyncPlaintextTransport")
    else:
        missing += [
            name for name in TRANSPORT_HOOKS if not callable(getattr(transport, name, None))
        ]
    return missing


def choose(connection: type, transport: type | None) -> type[PublicConnection]:
    """BatchingConnection when every hook is there, else PublicConnection and one log line."""
    missing = missing_hooks(connection, transport)
    if not missing:
        return BatchingConnection
    log.warning(
        "pika %s lacks %s: AMQP publishes take pika's public path (correct, slower)",
        getattr(pika, "__version__", "?"),
        ", ".join(missing),
    )
    return PublicConnection


connection_class = choose(pika.SelectConnection, _AsyncPlaintextTransport)
"""The connection class a Link opens: decided once, at import."""
