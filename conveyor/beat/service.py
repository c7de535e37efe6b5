"""Starting beat for an app: the store it uses, as a command (`conveyor beat`) or as a thread
inside a worker (`conveyor worker -B`, for small setups: one process runs both)."""

from __future__ import annotations

import threading

from conveyor.app.base import Conveyor
from conveyor.beat.scheduler import Beat, positive_seconds
from conveyor.beat.stores import open_store, store_url


def build(
    app: Conveyor,
    *,
    schedule_file: str | None = None,
    max_interval: float | None = None,
    lease_timeout: float | None = None,
) -> Beat:
    """A Beat on the app's store; every entry is checked here, before anything runs."""
    lease = positive_seconds("beat_lease_timeout", lease_timeout, app.conf)
    namespace = app.main or "conveyor"
    store = open_store(
        store_url(app.conf, schedule_file), namespace, prefix=app.namespace, lease_timeout=lease
    )
    try:
        return Beat(app, store, namespace=namespace, lease_timeout=lease, max_interval=max_interval)
    except BaseException:
        store.close()
        raise


class EmbeddedBeat:
    """Beat in a daemon thread of a worker process (`worker -B`)."""

    def __init__(self, app: Conveyor) -> None:
        self.app = app
        self.beat: Beat | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.beat = build(self.app)
        self._thread = threading.Thread(
            target=self.beat.run, args=(self._stop,), name="conveyor-beat", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it releases the lease); does nothing if it never started."""
        self._stop.set()
        if self._thread is not None and self.beat is not None:
            self._thread.join(self.beat.renew_every + 5.0)
