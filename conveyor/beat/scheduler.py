"""The beat loop: lead through the store's lease, send each due entry once, sleep until the
next fire time or lease renewal.

Per entry the store keeps the last fire time accounted for. The first time an entry is seen
that is the moment it was seen (its anchor: nothing fires then); afterwards, when
`next_after(last)` has passed, the leader claims the latest due fire time and, only if the
claim succeeded, sends the task. So:

* a restart goes on from the stored time: no burst, no skipped run;
* runs missed while no beat was alive fire once, for the latest missed time (not once per
  missed tick), then the schedule resumes; a leader that only fell behind (a slow publish
  or store) sends each tick it owes, up to MAX_OWED, oldest first;
* each (entry, fire time) is claimed once among all beat processes, so a leader change, two
  leaders for a moment, or a paused leader waking up cannot double a tick. The task id is
  derived from (namespace, entry, fire time) too, so the tick is recognisable downstream;
* the trade-off: the claim comes before the publish, so a beat killed between the two, or a
  publish that fails, loses that one tick (at most once per tick, never twice).

A follower tries to take the lease every lease_timeout / 3; the leader renews it as often.
A leader that dies is replaced within lease_timeout + lease_timeout / 3; after a clean
shutdown, which releases the lease, within lease_timeout / 3.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from conveyor.app.base import Conveyor
from conveyor.beat import entries as entries_module
from conveyor.beat import walltime
from conveyor.beat.crontab import crontab
from conveyor.beat.entries import Entry
from conveyor.beat.store import ScheduleStore
from conveyor.core.errors import ConfigurationError, ConveyorError

log = logging.getLogger("conveyor.beat")
RETRY_AFTER_ERROR = 1.0
MAX_OWED = 10
"""Ticks a leader that fell behind sends one by one; further behind, they fire once."""
_TICK_IDS = uuid.UUID("5d0c7d8e-6a4f-4c59-9a53-8a7f0b8d2f11")
Clock = Callable[[], float]
Send = Callable[[Entry, datetime, str], object]


def tick_id(namespace: str, entry: str, fire_time: datetime) -> str:
    """The task id of one tick: the same in every beat process."""
    return str(uuid.uuid5(_TICK_IDS, f"{namespace}\n{entry}\n{fire_time.timestamp()!r}"))


def _passed(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment <= now


def positive_seconds(setting: str, given: float | None, conf: Any) -> float:
    """`given`, else the setting, as a positive number of seconds (else ConfigurationError)."""
    value = conf[setting] if given is None else given
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise ConfigurationError(f"{setting} must be a positive number of seconds, not {value!r}")
    return seconds


def optional_seconds(setting: str, given: float | None, conf: Any) -> float | None:
    """Like positive_seconds, where None or 0 (Celery's default) means "not set"."""
    value = conf[setting] if given is None else given
    return None if value in (None, 0) else positive_seconds(setting, value, conf)


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Beat:
    """One beat process's scheduler. `clock` (epoch seconds) and `send` can be injected;
    `tick()` does one round and says how long to sleep, `run(stop)` loops until `stop`."""

    def __init__(
        self,
        app: Conveyor,
        store: ScheduleStore,
        *,
        namespace: str | None = None,
        lease_timeout: float | None = None,
        max_interval: float | None = None,
        clock: Clock = time.time,
        send: Send | None = None,
        holder: str | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        conf = app.conf
        self.app, self.store, self.clock = app, store, clock
        self.namespace = namespace or app.main or "conveyor"
        self.lease_timeout = positive_seconds("beat_lease_timeout", lease_timeout, conf)
        self.max_interval = optional_seconds("beat_max_loop_interval", max_interval, conf)
        self.cron_deadline = optional_seconds("beat_cron_starting_deadline", None, conf)
        self.holder = holder or default_holder()
        self.tz = tz or walltime.app_zone(conf)
        self._send = send or self._send_task
        self.entries = entries_module.load(app, self._now(), self.tz)
        self.leading = False
        self._last: dict[str, datetime] = {}  # per entry: the last fire time accounted for
        self._next: dict[str, datetime | None] = {}  # per entry: when to look at it again

    @property
    def renew_every(self) -> float:
        return self.lease_timeout / 3

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), walltime.UTC)

    # -- one round ------------------------------------------------------------------------

    def tick(self) -> float:
        """Renew or take the lease; as leader, send what is due. Returns seconds to sleep."""
        now = self._now()
        leading = self.store.acquire(self.holder, self.lease_timeout, now.timestamp())
        if leading != self.leading:
            log.info(
                "beat %s %s the lead of %r",
                self.holder,
                "took" if leading else "lost",
                self.namespace,
            )
            self._last.clear()  # re-read what another leader stored (saves failed claims)
            self._next.clear()
        self.leading = leading
        sleep = self.renew_every
        if self.max_interval is not None:
            sleep = min(sleep, self.max_interval)
        if not leading:
            return sleep
        for entry in self.entries:
            # An entry is looked at (store and schedule) only once its next fire time came.
            if entry.name not in self._next or _passed(self._next[entry.name], now):
                self._next[entry.name] = self._step(entry, now)
            following = self._next[entry.name]
            if following is not None:
                sleep = min(sleep, (following - self._now()).total_seconds())
        return max(0.0, sleep)

    def _step(self, entry: Entry, now: datetime) -> datetime | None:
        """Send what `entry` has due; return its next fire time."""
        cached = self._last.get(entry.name)
        last = cached or self._stored(entry, now)
        for due in self._due(entry, last, now, leading_since_last=cached is not None):
            if not self.store.claim(entry.name, due.timestamp()):
                last = self._stored(entry, now)  # another beat claimed it: go on from there
                break
            last = due
            if self._past_deadline(entry, due, now):
                continue
            self._publish(entry, due)
        self._last[entry.name] = last
        return entry.schedule.next_after(last, self.tz)

    def _past_deadline(self, entry: Entry, due: datetime, now: datetime) -> bool:
        """A crontab run later than beat_cron_starting_deadline is skipped, as in Celery."""
        late = (now - due).total_seconds()
        if self.cron_deadline is None or not isinstance(entry.schedule, crontab):
            return False
        if late <= self.cron_deadline:
            return False
        log.info(
            "beat entry %r: the run of %s is %.0f s late, past beat_cron_starting_deadline: "
            "skipped",
            entry.name,
            due.isoformat(),
            late,
        )
        return True

    def _due(
        self, entry: Entry, last: datetime, now: datetime, *, leading_since_last: bool
    ) -> list[datetime]:
        """The fire times to send now, oldest first. A leader that has led since `last` and
        merely fell behind (a slow publish or store) owes each tick, up to MAX_OWED of them;
        otherwise (a new leader, a restart, a longer stall) the missed ones fire once."""
        schedule = entry.schedule
        owed: list[datetime] = []
        if leading_since_last:
            due = schedule.next_after(last, self.tz)
            while due is not None and due <= now and len(owed) <= MAX_OWED:
                owed.append(due)
                due = schedule.next_after(due, self.tz)
            if len(owed) <= MAX_OWED:
                return owed
        latest = schedule.latest_due(last, now, self.tz)
        return [] if latest is None else [latest]

    def _stored(self, entry: Entry, now: datetime) -> datetime:
        """The stored last fire time, anchoring a new entry at `now`."""
        stored = self.store.last_run(entry.name)
        if stored is None:
            self.store.claim(entry.name, now.timestamp())
            stored = self.store.last_run(entry.name)
            log.info("beat entry %r is new: its schedule counts from %s", entry.name, now)
        assert stored is not None, "a claimed entry has a stored time"
        return datetime.fromtimestamp(stored, walltime.UTC)

    def _publish(self, entry: Entry, due: datetime) -> None:
        task_id = tick_id(self.namespace, entry.name, due)
        try:
            self._send(entry, due, task_id)
        except ConveyorError as exc:
            log.error(
                "beat entry %r: sending the tick of %s failed, it is lost: %s",
                entry.name,
                due.isoformat(),
                exc,
            )
            return
        except Exception:  # a bug in a hook or an option: the other entries keep firing
            log.exception("beat entry %r: sending the tick of %s failed", entry.name, due)
            return
        log.info(
            "beat entry %r: sent %s[%s] for %s", entry.name, entry.task, task_id, due.isoformat()
        )

    def _send_task(self, entry: Entry, due: datetime, task_id: str) -> object:
        return self.app.send_task(
            entry.task, entry.args, entry.kwargs, task_id=task_id, **entry.options
        )

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set; then release the lease (a clean handover) and close."""
        if not self.entries:
            log.warning("beat: no entries (beat_schedule and add_periodic_task are empty)")
        log.info(
            "beat %s starting: %d entries, lease %g s, zone %s",
            self.holder,
            len(self.entries),
            self.lease_timeout,
            self.tz,
        )
        try:
            while not stop.is_set():
                try:
                    sleep = self.tick()
                except ConveyorError as exc:
                    log.error("beat: the store failed, trying again: %s", exc)
                    self.leading, sleep = False, RETRY_AFTER_ERROR
                stop.wait(sleep)
        finally:
            self.close()

    def close(self) -> None:
        try:
            if self.leading:
                self.store.release(self.holder)
                self.leading = False
        except ConveyorError as exc:
            log.warning("beat: could not release the lease (it will expire): %s", exc)
        finally:
            self.store.close()
