"""Signal: conveyor's own small dispatcher, shaped like Celery's (and Django's) signals.

``@sig.connect`` or ``sig.connect(receiver, sender=..., weak=True, dispatch_uid=...)``;
``sig.send(sender, **named)`` calls every live receiver as
``receiver(signal=sig, sender=sender, **named)`` and returns ``[(receiver, response)]``.

What is worth knowing:

- Receivers are held by weak reference unless ``weak=False`` (bound methods through
  WeakMethod), so connecting from an object that goes away does not keep it alive; a
  dead receiver is dropped on the next send. A signal made with ``Signal(..., weak=False)``
  holds its receivers strongly unless told otherwise (the app's `on_after_configure`: a
  periodic-task setup defined inside a factory function must not vanish before beat starts).
- A ``sender`` filter matches a sender that *is* that object, or, for a string filter, a
  string sender equal to it or a sender whose ``name`` equals it (so ``sender="tasks.add"``
  matches both the publish signals, which send the task name, and the task signals, which
  send the task object; Celery matches the first only).
- A receiver that raises is logged with its traceback and its exception is the response;
  `send` itself never raises, so a hook can never break a task or the worker.
- `send` with nobody connected costs one attribute read: it is on the worker's hot path.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, overload

log = logging.getLogger("conveyor.signals")
Receiver = Callable[..., Any]
_Ref = Callable[[], Receiver | None]


def _reference(receiver: Receiver, weak: bool) -> _Ref:
    if not weak:
        return lambda: receiver
    if hasattr(receiver, "__self__") and hasattr(receiver, "__func__"):
        return weakref.WeakMethod(receiver)
    return weakref.ref(receiver)


def _receiver_key(receiver: Receiver) -> Hashable:
    if hasattr(receiver, "__self__") and hasattr(receiver, "__func__"):
        return (id(receiver.__self__), id(receiver.__func__))
    return id(receiver)


class Signal:
    """One named signal; see the module docstring."""

    def __init__(
        self, name: str, providing_args: tuple[str, ...] = (), *, weak: bool = True
    ) -> None:
        self.name = name
        #: The keyword arguments `send` passes besides signal and sender (documentation).
        self.providing_args = providing_args
        #: How `connect` holds a receiver when its call does not say.
        self.weak = weak
        self._lock = threading.Lock()
        # (key, sender filter, reference); replaced, never mutated, so send needs no lock.
        self.receivers: tuple[tuple[Hashable, Any, _Ref], ...] = ()

    def __repr__(self) -> str:
        return f"<Signal: {self.name}>"

    @overload
    def connect(self, receiver: Receiver) -> Receiver: ...
    @overload
    def connect(
        self,
        receiver: None = None,
        *,
        sender: Any = None,
        weak: bool | None = None,
        dispatch_uid: Hashable | None = None,
    ) -> Callable[[Receiver], Receiver]: ...

    def connect(
        self,
        receiver: Receiver | None = None,
        *,
        sender: Any = None,
        weak: bool | None = None,
        dispatch_uid: Hashable | None = None,
    ) -> Any:
        """Connect `receiver` (or decorate one). Connecting the same receiver (or the same
        `dispatch_uid`) for the same sender twice keeps one connection."""

        def register(function: Receiver) -> Receiver:
            if not callable(function):
                raise TypeError(f"{self.name}: a receiver must be callable, not {function!r}")
            key = (dispatch_uid or _receiver_key(function), _sender_key(sender))
            reference = _reference(function, self.weak if weak is None else weak)
            with self._lock:
                kept = tuple(entry for entry in self.receivers if entry[0] != key)
                self.receivers = (*kept, (key, sender, reference))
            return function

        if receiver is not None:
            return register(receiver)
        return register

    def disconnect(
        self,
        receiver: Receiver | None = None,
        *,
        sender: Any = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect a receiver (by itself or its `dispatch_uid`); True if it was connected."""
        if dispatch_uid is not None:
            ident = dispatch_uid
        elif receiver is not None:
            ident = _receiver_key(receiver)
        else:
            raise TypeError(f"{self.name}.disconnect needs a receiver or a dispatch_uid")
        key = (ident, _sender_key(sender))
        with self._lock:
            before = len(self.receivers)
            self.receivers = tuple(entry for entry in self.receivers if entry[0] != key)
            return len(self.receivers) < before

    def live_receivers(self, sender: Any) -> list[Receiver]:
        """The receivers connected for `sender` (or for any sender) that are still alive."""
        found: list[Receiver] = []
        dead = False
        for _key, wanted, reference in self.receivers:
            function = reference()
            if function is None:
                dead = True
            elif wanted is None or _matches(wanted, sender):
                found.append(function)
        if dead:
            with self._lock:
                self.receivers = tuple(e for e in self.receivers if e[2]() is not None)
        return found

    def send(self, sender: Any = None, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call the receivers; one that raises is logged and its exception is its response."""
        if not self.receivers:
            return []
        responses: list[tuple[Receiver, Any]] = []
        for function in self.live_receivers(sender):
            try:
                response = function(signal=self, sender=sender, **named)
            except Exception as exc:
                log.exception("a receiver of signal %s raised: %r", self.name, function)
                response = exc
            responses.append((function, response))
        return responses

    send_robust = send  # Celery's name; send never raises anyway


def _sender_key(sender: Any) -> Hashable:
    return sender if isinstance(sender, str) else id(sender)


def _matches(wanted: Any, sender: Any) -> bool:
    if isinstance(wanted, str):
        return sender == wanted or getattr(sender, "name", None) == wanted
    return sender is wanted
