"""PostgreSQL LISTEN/NOTIFY: wake an idle fetch the moment a message becomes ready.

A row trigger on ``<prefix>messages`` notifies the channel ``<prefix>messages`` whenever a
row becomes READY (published, requeued, reaped, replayed); PostgreSQL sends each distinct
notification once per transaction, at COMMIT. A transport that waits in `fetch` keeps one
more connection LISTENing in a daemon thread, which turns notifications into LocalSignal
wake-ups. Polling goes on underneath, more slowly (a delayed message becomes due without
any notification), so a listener that is down costs latency, never a message.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from conveyor.core.url import URL
from conveyor.transports.sql.broadcast import LocalSignal

log = logging.getLogger("conveyor.transports.sql")
_RETRY = (1.0, 2.0, 5.0)
_CHECK_STOP = 0.25


def create_trigger(connection: Connection, prefix: str) -> None:
    """Install the notifying trigger unless it is there (PostgreSQL 14 or later)."""
    version = connection.dialect.server_version_info or (0,)
    if version < (14,):  # no CREATE OR REPLACE TRIGGER: polling alone
        return
    table, name = f"{prefix}messages", f"{prefix}messages_ready"
    present = text("SELECT 1 FROM pg_trigger WHERE tgname = :name AND tgrelid = to_regclass(:t)")
    if connection.execute(present, {"name": name, "t": table}).first():
        return
    # The prefix is a validated identifier (schema.validate_prefix); no value is spliced.
    connection.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_notify('{table}', NEW.queue); RETURN NULL; END $$"
    )
    connection.exec_driver_sql(
        f"CREATE OR REPLACE TRIGGER {name} AFTER INSERT OR UPDATE OF state ON {table} "
        f"FOR EACH ROW WHEN (NEW.state = 0) EXECUTE FUNCTION {name}()"
    )


class Listener:
    """A daemon thread LISTENing on `channel` through its own connection from `engine`."""

    def __init__(self, engine: Engine, channel: str, signal: LocalSignal, url: URL) -> None:
        self._engine = engine
        self._channel = channel
        self._signal = signal
        self._url = url
        self._stop = threading.Event()
        self.listening = False
        self._thread = threading.Thread(target=self._run, name="conveyor-sql-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as exc:  # any failure: poll meanwhile, listen again later
                self.listening = False
                delay = _RETRY[min(failures, len(_RETRY) - 1)]
                failures += 1
                log.info("LISTEN on %s failed, again in %.0f s: %s", self._url, delay, exc)
                self._stop.wait(delay)

    def _listen(self) -> None:
        proxy = self._engine.raw_connection()
        proxy.detach()  # this connection never goes back to the pool
        connection: Any = proxy.dbapi_connection
        try:
            connection.autocommit = True
            connection.execute(f'LISTEN "{self._channel}"')
            self.listening = True
            self._signal.notify()  # a message may have come while nobody listened
            while not self._stop.is_set():
                for _ in connection.notifies(timeout=_CHECK_STOP):
                    self._signal.notify()
        finally:
            self.listening = False
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=_CHECK_STOP + 1.0)
