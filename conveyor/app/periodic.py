"""Periodic tasks declared in code: `app.add_periodic_task`, `app.on_after_configure` and
`app.on_after_finalize`.

The app layer only records entries; beat (which sits above it) reads them with the
`beat_schedule` setting, validates them and runs them. The receivers of both signals run
once per app, when beat loads its schedule (on_after_configure's first), with
``sender=app`` as in Celery:

    @app.on_after_configure.connect
    def setup_periodic_tasks(sender, **kwargs):
        sender.add_periodic_task(10.0, ping.s("hello"), name="ping every 10 s")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor

log = logging.getLogger("conveyor.app.periodic")
Receiver = Callable[..., Any]


class AfterConfigure:
    """`app.on_after_configure` (and `on_after_finalize`): receivers connected by decorator,
    sent once per app."""

    def __init__(self, app: Conveyor) -> None:
        self._app = app
        self._receivers: list[Receiver] = []
        self._sent = False
        self._lock = threading.Lock()

    def connect(self, receiver: Receiver | None = None, **_options: Any) -> Any:
        """``@app.on_after_configure.connect`` (Celery's `weak=`/`dispatch_uid=` are
        accepted and ignored: receivers are held strongly)."""
        if receiver is None:
            return self.connect
        self._receivers.append(receiver)
        return receiver

    def send_once(self) -> None:
        """Call every receiver with ``sender=app`` the first time only. A receiver that
        raises is an error in the user's setup code: it propagates, naming the receiver."""
        with self._lock:
            if self._sent:
                return
            self._sent = True
        for receiver in self._receivers:
            log.debug("on_after_configure: %s", getattr(receiver, "__qualname__", receiver))
            receiver(sender=self._app)


def add_periodic_task(
    app: Conveyor,
    schedule: Any,
    sig: Any,
    args: Any = (),
    kwargs: Any = (),
    name: str | None = None,
    **options: Any,
) -> str:
    """Record an entry for beat, as `beat_schedule` would; returns its name.

    `sig` is a signature (``ping.s("hello")``) or a task; `args`/`kwargs` given here replace
    the signature's own, and `options` are added to its call options. Nothing is checked
    here: beat validates every entry when it starts, naming the bad part.
    """
    if hasattr(sig, "s") and not hasattr(sig, "task"):
        sig = sig.s()
    entry = {
        "task": getattr(sig, "task", sig),
        "schedule": schedule,
        "args": tuple(args) if args else tuple(getattr(sig, "args", ())),
        "kwargs": dict(kwargs) if kwargs else dict(getattr(sig, "kwargs", {})),
        "options": {**dict(getattr(sig, "options", {})), **options},
    }
    key = name or f"{entry['task']}{entry['args']!r}{entry['kwargs']!r}"
    app.periodic_tasks[key] = entry
    return key
