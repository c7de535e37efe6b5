"""The Worker: one consumer thread fetching up to the prefetch window, feeding a pool.

The `conveyor worker` command runs as worker_processes processes (siblings.py), each a
Worker with its share of the slots.

Shutdown: the first SIGTERM/SIGINT is warm (stop fetching, give prefetched unstarted work
back to the broker, let running tasks finish up to `worker_shutdown_timeout`); a second one
is cold (kill what can be killed, close the connections, exit).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from conveyor import signals
from conveyor.app.base import Conveyor
from conveyor.app.protocol import parse_time
from conveyor.core.consumer import Consumer
from conveyor.core.errors import ConfigurationError, ConveyorError
from conveyor.core.message import Delivery
from conveyor.core.registry import BACKEND_GROUP, TRANSPORT_GROUP, load_for_url
from conveyor.worker import backend_wait, request, results, siblings
from conveyor.worker.autoscale import Autoscaler
from conveyor.worker.control import ControlListener
from conveyor.worker.events import WorkerEvents
from conveyor.worker.execute import make_context
from conveyor.worker.expiry import is_expired
from conveyor.worker.holding import Holding
from conveyor.worker.middleware import call_hook
from conveyor.worker.pools import ThreadPool, create_pool, pool_name
from conveyor.worker.stack import stack_for

log = logging.getLogger("conveyor.worker")
# A message whose eta is further ahead than this (a producer that did not use the broker's
# delay) goes back to the broker with the remaining delay; the worker never sleeps on it.
ETA_SLACK = 0.5
COLD_CLOSE_TIMEOUT = 5.0
SIGNAL_REPEAT = 0.25
LIVENESS_CHECK = 1.0  # seconds between checks that the consumer thread still runs


class ConsumerDied(ConveyorError):
    """The consumer thread ended while the worker ran: the worker stops with an error (a
    non-zero exit) so that a supervisor restarts it, rather than live on doing nothing."""


class Worker:
    def __init__(
        self,
        app: Conveyor,
        *,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        pool: str | None = None,
        prefetch_multiplier: int | None = None,
        hostname: str | None = None,
        app_path: str | None = None,
        shutdown_timeout: float | None = None,
        autoscale: tuple[int, int] | None = None,
    ) -> None:
        """`autoscale` (MAX, MIN): the pool grows and shrinks between them by load
        (autoscale.py); MAX takes the place of `concurrency`."""
        conf = app.conf
        self.app = app
        app.import_task_modules()
        self.queues = list(queues or [conf.task_default_queue])
        self.pool_kind = pool_name(pool or conf.worker_pool)
        if self.pool_kind == "solo":
            if autoscale is not None:
                raise ConfigurationError("autoscale needs the threads or processes pool, not solo")
            concurrency = 1
        if autoscale is not None:
            concurrency = autoscale[0]
        slots = concurrency or conf.worker_concurrency or os.cpu_count() or 1
        # The worker command (`conveyor -A app worker`) with the threads pool shares its
        # slots among worker_processes processes (default: one per CPU, at most one per
        # slot): this one and its siblings (siblings.py), each with its share of threads.
        self.processes = 1
        if self.pool_kind == "threads" and app_path and siblings.on_command_line():
            wanted = int(conf.worker_processes or os.cpu_count() or 1)
            self.processes = max(1, min(wanted, slots))
        self.concurrency = -(-slots // self.processes)
        multiplier = prefetch_multiplier or conf.worker_prefetch_multiplier
        self.prefetch = max(1, self.concurrency * multiplier)
        # While tasks run in under pools.QUICK seconds, the window widens to this:
        # a held task then waits a few ms at most, and each fetch, state read, store and
        # ack serves more tasks.
        self.quick_prefetch = max(self.prefetch, self.concurrency * conf.worker_quick_prefetch)
        self.shutdown_timeout = (
            conf.worker_shutdown_timeout if shutdown_timeout is None else shutdown_timeout
        )
        self._threads: list[threading.Thread] = []
        self._consumer_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stop_requested = threading.Event()  # by a signal, or by stop()
        self.stack = stack_for(app)
        self._checked: dict[str, results.Checked] = {}
        self._hostname, self._app_path, self._autoscale = hostname, app_path, autoscale
        # With siblings to start, the parts of one process (hostname, pool, consumer,
        # connections) are built by run() once they have started, so that they can be
        # forked from a process that has no connection or thread yet (siblings.py).
        self.siblings: siblings.Siblings | None = None
        self._unstarted: siblings.Siblings | None = None
        if self.processes > 1 and not siblings.is_sibling():
            self._unstarted = siblings.Siblings(self.processes - 1)
        else:
            self._build()

    def _build(self) -> None:
        """This process's own parts: its hostname, pool, consumer, control and events."""
        app, hostname, autoscale = self.app, self._hostname, self._autoscale
        self.hostname = hostname or f"conveyor.{os.getpid()}@{socket.gethostname()}"
        if hostname and siblings.is_sibling():
            self.hostname = f"{hostname}-{os.environ[siblings.SIBLING_ENV]}"
        # Autoscaling starts at MIN (this process's share of it, one at least); the prefetch
        # window is sized by MAX, so that work waits for the slots it would grow.
        size = self.concurrency
        if autoscale is not None:
            size = min(size, max(1, -(-autoscale[1] // self.processes)))
        self.pool = create_pool(self.pool_kind, app, self.hostname, size, self._app_path)
        self.autoscaler: Autoscaler | None = None
        if autoscale is not None and isinstance(self.pool, ThreadPool):
            keepalive = float(app.conf.worker_autoscale_keepalive)
            self.autoscaler = Autoscaler(self.pool, self.concurrency, size, keepalive)
        self.consumer = Consumer(
            app.transport,
            self.queues,
            self.on_delivery,
            prefetch=self.prefetch,
            on_batch=self.on_batch,
        )
        self.control = ControlListener(
            app, self.hostname, self.pool, alive=self.consumer_alive, worker=self
        )
        self.events = WorkerEvents(
            app,
            self.hostname,
            self.pool,
            self.pool_kind,
            self.queues,
            held=lambda: self.consumer.held,
            alive=lambda: self.consumer_alive() or self._stopping.is_set(),
        )
        self.holding = Holding(self._submit)

    def _start_siblings(self, family: siblings.Siblings) -> None:
        """Start the siblings, then build this process's parts (in each process: a forked
        sibling goes on from here as a single-process Worker of its own). The transport's
        and the backend's modules (their client libraries) are imported first, so that a
        forked sibling imports nothing again."""
        self._unstarted = None
        load_for_url(TRANSPORT_GROUP, self.app.conf.broker_url)
        load_for_url(BACKEND_GROUP, self.app.conf.result_backend)
        if not family.start():
            self.siblings = family
        self._build()

    # -- the hot path ------------------------------------------------------------------

    def on_batch(self, deliveries: list[Delivery]) -> None:
        """Read the stored states of a fetched batch in one round trip, for the revoked and
        duplicate check before each task runs (results.claim); then size the window of the
        next fetch by how quick the tasks have been."""
        ids = [d.message.correlation_id for d in deliveries if d.message.correlation_id]
        try:
            self._checked = results.check_many(self.app, ids) if ids else {}
        except Exception as exc:
            self._checked = {}  # each task reads its own state instead
            log.warning("reading the states of %d tasks failed: %s", len(ids), exc)
        quick = self.pool.mostly_quick()
        self.consumer.prefetch = self.quick_prefetch if quick else self.prefetch

    def on_delivery(self, delivery: Delivery) -> None:
        """Check a delivery and hand it to the pool; never raises (poison never crashes)."""
        try:
            self._dispatch(delivery)
        except Exception as exc:
            log.exception("handling message %s failed", delivery.message.id)
            if not delivery.settled:
                try:
                    delivery.nack(requeue=True, delay=1.0, reason=f"worker error: {exc}")
                except Exception:
                    log.exception("returning message %s failed", delivery.message.id)

    def _dispatch(self, delivery: Delivery) -> None:
        try:
            job = request.read(self.app, delivery)
        except request.UNREADABLE as problem:
            request.reject(self.app, delivery, problem)
            return
        message = job.message
        job.checked = self._checked.pop(message.id, None)
        self.events.received(message, delivery.queue)
        now = time.time()
        if is_expired(message, now):
            request.expire(self.app, delivery, job)
            return
        if message.eta is not None and (due := parse_time(message.eta)) > now + ETA_SLACK:
            delivery.nack(requeue=True, delay=due - now, reason="eta not reached")
            return
        task = self.app.tasks[message.task]
        late = self.app.conf.task_acks_late if task.acks_late is None else task.acks_late
        work = request.Work(job, delivery, bool(late), self.app)
        if signals.task_received.receivers:
            signals.task_received.send(sender=self, request=make_context(job, self.hostname))
        self._submit(work)

    def _submit(self, work: request.Work) -> None:
        """To the pool, unless a middleware holds it first (rate limits: holding.py)."""
        for before_submit in self.stack.submit:
            wait = call_hook(before_submit, self, work)
            if wait:
                self.holding.hold(wait, work)
                return
        self.pool.submit(work)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        backend_wait.allow_waiting(self.app)
        signals.worker_init.send(sender=self)
        for starting in self.stack.starting:
            call_hook(starting, self)
        self._touch_queues()
        self.pool.start()
        if self.autoscaler is not None:
            self.autoscaler.start()
        self._consumer_thread = self.consumer.start()
        self._threads.append(self._consumer_thread)
        control = self.control.start()
        if control is not None:
            self._threads.append(control)
        self.events.start()
        log.info(
            "%s ready: queues %s, %s pool x%d (one of %d processes), prefetch %d "
            "(%d while tasks are quick), broker %s, results %s",
            self.hostname,
            ",".join(self.queues),
            self.pool_kind,
            self.concurrency,
            self.processes,
            self.prefetch,
            self.quick_prefetch,
            self.app.transport.url,
            self.app.backend.url,
        )
        signals.worker_ready.send(sender=self)

    def consumer_alive(self) -> bool:
        """Whether the consumer thread runs: the worker's liveness (ping answers only then)."""
        return self._consumer_thread is not None and self._consumer_thread.is_alive()

    def _touch_queues(self) -> None:
        """Reach each queue once before saying ready, so that "ready" means messages sent
        now are kept: on RabbitMQ this declares the queue, and the default exchange drops
        what is published to a queue that does not exist yet. A broker that refuses is
        retried with bounded backoff until it answers (or the worker is told to stop):
        "ready" is never said while the broker is down."""
        next_delay = self.consumer.backoff.delays()
        waiting = list(self.queues)
        while waiting and not self._stop_requested.is_set():
            try:
                self.app.transport.size(waiting[0])
            except ConveyorError as exc:
                delay = next_delay()
                log.warning(
                    "queue %r is not reachable yet, retrying in %.2f s: %s", waiting[0], delay, exc
                )
                self._stop_requested.wait(delay)
            else:
                waiting.pop(0)

    def stop(self) -> None:
        """Warm shutdown; returns when running work finished or the timeout passed."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._stop_requested.set()
        backend_wait.stop_waiting(self.app)
        log.info("warm shutdown: finishing running tasks (up to %.0f s)", self.shutdown_timeout)
        if self.autoscaler is not None:
            self.autoscaler.stop()
        self.pool.close()
        self.consumer.stop()
        self.control.stop()
        for thread in self._threads:
            thread.join(self.consumer.poll_timeout + 1.0)
        for work in [*self.holding.drain(), *self.pool.drain()]:
            work.give_back()
        if not self.pool.join(self.shutdown_timeout):
            log.warning("tasks still running after %.0f s; stopping them", self.shutdown_timeout)
            self.pool.kill()
            for work in self.pool.active():
                work.give_back()
        self.events.stop()
        for stopping in self.stack.stopping:
            call_hook(stopping, self)
        signals.worker_shutdown.send(sender=self)
        self.app.close()

    def cold_stop(self) -> None:
        """Kill what can be killed, return every unfinished message to the broker, exit."""
        log.warning("cold shutdown: unfinished messages go back to the broker")
        backend_wait.stop_waiting(self.app)
        self.pool.kill()

        def give_back_and_close() -> None:
            # A fetch still in flight could take back what is returned: let it end first.
            self.pool.close()
            self.consumer.stop()
            for thread in self._threads:
                thread.join(self.consumer.poll_timeout + 1.0)
            unfinished = [*self.pool.active(), *self.holding.drain(), *self.pool.drain()]
            for work in unfinished:
                work.give_back()
            log.info("returned %d unfinished messages", len(unfinished))
            self.app.close()

        # A broker that hangs must not hold the exit: what is not returned in time comes
        # back when this consumer's lease lapses.
        closer = threading.Thread(target=give_back_and_close, daemon=True)
        closer.start()
        closer.join(COLD_CLOSE_TIMEOUT)
        if closer.is_alive():
            log.warning(
                "the broker did not answer within %.0f s; exiting anyway", COLD_CLOSE_TIMEOUT
            )
        os._exit(1)

    def supervise(self, stop_requested: threading.Event | None = None) -> None:
        """Block until `stop_requested` is set; if the consumer thread ends first, stop
        (warm) and raise ConsumerDied."""
        stop_requested = stop_requested or threading.Event()
        while not stop_requested.wait(LIVENESS_CHECK):
            if not self.consumer_alive() and not self._stopping.is_set():
                log.critical("%s: the consumer thread ended; stopping", self.hostname)
                self.stop()
                raise ConsumerDied(f"{self.hostname}: the consumer thread ended")

    def run(self) -> None:
        """Start, then block until SIGTERM/SIGINT (the second one forces a cold shutdown)."""
        stop_requested = self._stop_requested
        first_signal_at: list[float] = []

        def on_signal(signum: int, _frame: Any) -> None:
            # Launchers such as timeout(1) send one SIGTERM to the process and again to its
            # group: a repeat within SIGNAL_REPEAT seconds is that echo, not a second request.
            if self.siblings is not None:
                self.siblings.signal(signum)
            if first_signal_at and time.monotonic() - first_signal_at[0] >= SIGNAL_REPEAT:
                signals.worker_shutting_down.send(
                    sender=self.hostname, sig=signal.Signals(signum).name, how="Cold", exitcode=1
                )
                self.cold_stop()
            if not first_signal_at:
                signals.worker_shutting_down.send(
                    sender=self.hostname, sig=signal.Signals(signum).name, how="Warm", exitcode=0
                )
                first_signal_at.append(time.monotonic())
            stop_requested.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        if self._unstarted is not None:
            self._start_siblings(self._unstarted)
        self.start()
        self.supervise(stop_requested)
        self.stop()
        if self.siblings is not None and not self.siblings.wait(self.shutdown_timeout + 5.0):
            log.warning("sibling workers still running; killing them")
            self.siblings.kill()
        log.info("%s stopped", self.hostname)
