"""Periodic tasks declared in code: `app.add_periodic_task`, `app.on_after_configure` and
`app.on_after_finalize`.

The app layer only records entries; beat (which sits above it) reads them with the
`beat_schedule` setting, validates them and runs them. Both are signals of the app's own
(`conveyor.signals.dispatch.Signal`, as Celery's are `celery.utils.dispatch.Signal`), sent
once per app when beat loads its schedule (on_after_configure first), with ``sender=app``
(and ``source=app.conf`` for on_after_configure) as in Celery:

    @app.on_after_configure.connect
    def setup_periodic_tasks(sender, **kwargs):
        sender.add_periodic_task(10.0, ping.s("hello"), name="ping every 10 s")

They hold their receivers strongly (a setup function defined inside an app factory must
not be collected before beat starts), and a receiver that raises is returned to beat,
which refuses to start naming it: a broken setup must not silently drop schedules.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from conveyor.signals.dispatch import Receiver, Signal

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor

_sent: weakref.WeakSet[Conveyor] = weakref.WeakSet()
_lock = threading.Lock()


def configure_signals() -> tuple[Signal, Signal]:
    """An app's `on_after_configure` and `on_after_finalize`."""
    return (
        Signal("on_after_configure", ("source",), weak=False),
        Signal("on_after_finalize", weak=False),
    )


def send_configured(app: Conveyor) -> list[tuple[Signal, Receiver, Exception]]:
    """Send on_after_configure, then on_after_finalize, the first time for `app` only; the
    receivers that raised, with their signal and error (each already logged by the signal)."""
    with _lock:
        if app in _sent:
            return []
        _sent.add(app)
    sends = [
        (app.on_after_configure, app.on_after_configure.send(sender=app, source=app.conf)),
        (app.on_after_finalize, app.on_after_finalize.send(sender=app)),
    ]
    return [
        (signal, receiver, error)
        for signal, responses in sends
        for receiver, error in responses
        if isinstance(error, Exception)
    ]


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
