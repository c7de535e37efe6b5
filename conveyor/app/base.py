"""Conveyor: the app. It holds the settings, the task registry and the connections."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, TypeVar, overload
from zoneinfo import ZoneInfo

from conveyor import signals
from conveyor.app import (
    call_options,
    context,
    current,
    discovery,
    pipelining,
    protocol,
    publish_signals,
    sending,
    states,
)
from conveyor.app import exceptions as task_exceptions
from conveyor.app.annotations import annotate
from conveyor.app.call_checks import check_call
from conveyor.app.config import Settings
from conveyor.app.control import Control
from conveyor.app.events import EventSender
from conveyor.app.exceptions import NotRegistered
from conveyor.app.periodic import add_periodic_task, configure_signals
from conveyor.app.result import AsyncResult
from conveyor.app.routing import route
from conveyor.app.signing import Signer
from conveyor.app.task import Task as BaseTask
from conveyor.app.task import check_task_class, make_task
from conveyor.app.waiter import Waiter
from conveyor.backends.base import ResultBackend, ResultRecord
from conveyor.backends.errors import rebuild_exception
from conveyor.canvas.signature import Signature, signature_dicts
from conveyor.core import errors as core_errors
from conveyor.core.codecs import Serializer
from conveyor.core.message import new_task_id
from conveyor.core.names import validate_queue_name
from conveyor.core.pipeline import EXIT_TIMEOUT
from conveyor.core.producer import Producer
from conveyor.core.registry import create_backend, create_transport
from conveyor.core.transport import Transport
from conveyor.core.url import parse_url

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("conveyor.app")
_default_app: Conveyor | None = None


def default_app() -> Conveyor:
    """The most recently created app, for `AsyncResult(id)` without `app=`."""
    if _default_app is None:
        raise RuntimeError("no Conveyor app has been created; pass app=")
    return _default_app


def _exception_classes(*modules: Any) -> dict[str, type[BaseException]]:
    found = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def _epoch(value: datetime | float | str, zone: str = "UTC") -> float:
    """Epoch seconds of an eta/expires; a naive datetime is read in the app's timezone."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc if zone == "UTC" else ZoneInfo(zone))
        return value.timestamp()
    if isinstance(value, str):
        return protocol.parse_time(value)
    return float(value)


class Conveyor:
    """``Conveyor("tasks", broker=URL, backend=URL, **settings)``.

    The transport and backend are created on first use, so settings may change until then.
    """

    Task = BaseTask  # `class Base(app.Task)`, as with Celery

    def __init__(
        self,
        main: str | None = None,
        broker: str | None = None,
        backend: str | None = None,
        **settings: Any,
    ) -> None:
        global _default_app
        self.main = main
        self.conf = Settings(**settings)
        if broker is not None:
            self.conf.broker_url = broker
        if backend is not None:
            self.conf.result_backend = backend
        self.tasks: dict[str, BaseTask] = {}
        self._lock = threading.RLock()  # a producer builds the transport inside
        self._connections: dict[str, Any] = {}
        self.control = Control(self)
        self.waiter = Waiter(lambda: self.backend)
        self.events = EventSender(self)
        self.periodic_tasks: dict[str, dict[str, Any]] = {}  # add_periodic_task; beat reads
        self.on_after_configure, self.on_after_finalize = configure_signals()
        self._discover: list[tuple[Any, str]] = []
        _default_app = self
        current.attach(self)
        from conveyor.canvas.builtins import register_builtins

        register_builtins(self)  # the tasks behind xmap/xstarmap/chunks

    def __repr__(self) -> str:
        return f"<Conveyor {self.main or '__main__'}>"

    # -- configuration -------------------------------------------------------------------

    def config_from_object(
        self, obj: Any, silent: bool = False, force: bool = False, namespace: str | None = None
    ) -> None:
        """Load settings from a module, a path ('proj.celeryconfig', 'django.conf:settings')
        or an object (Celery names accepted). With ``namespace="CELERY"`` only the
        ``CELERY_``-prefixed names are read (Django's pattern). `silent` ignores a
        module that cannot be imported; `force` is accepted (loading is never lazy)."""
        del force
        try:
            self.conf.from_object(obj, namespace=namespace)
        except core_errors.ConfigurationError as exc:
            if not (silent and isinstance(exc.__cause__, ImportError)):
                raise

    def config_from_envvar(self, variable_name: str, silent: bool = False) -> None:
        """`config_from_object` on the module path the environment variable holds."""
        path = os.environ.get(variable_name)
        if not path:
            if silent:
                return
            raise core_errors.ConfigurationError(
                f"environment variable {variable_name} is not set: it should name the "
                "configuration module"
            )
        self.config_from_object(path, silent=silent)

    def set_default(self) -> None:
        """Make this the app that `current_app` and `AsyncResult(id)` use."""
        global _default_app
        _default_app = self

    set_current = set_default

    add_periodic_task = add_periodic_task

    # -- connections ---------------------------------------------------------------------

    def _connection(self, name: str, build: Callable[[], Any]) -> Any:
        """Build a connection once, even when threads race for it (see `close`)."""
        value = self._connections.get(name)
        if value is None:
            with self._lock:
                value = self._connections.get(name)
                if value is None:
                    value = self._connections[name] = build()
        return value

    @property
    def transport(self) -> Transport:
        transport: Transport = self._connection(
            "transport", lambda: create_transport(self.conf.broker_url)
        )
        return transport

    @property
    def backend(self) -> ResultBackend:
        """The result backend; `result_expires` overrides the URL's only when set in code, and
        the broker URL's `namespace` is the backend's unless the backend URL names one.
        The URLs are read only when the backend is built: this property is on every
        `delay()`'s path."""
        backend: ResultBackend = self._connection("backend", self._create_backend)
        return backend

    def _create_backend(self) -> ResultBackend:
        conf = self.conf
        options: dict[str, Any] = {}
        if conf.is_set("result_expires"):
            options["result_expires"] = conf.result_expires
        if self.namespace and "namespace" not in parse_url(conf.result_backend).options:
            options["namespace"] = self.namespace  # the broker's prefix on the results too
        return create_backend(conf.result_backend, **options)

    @property
    def namespace(self) -> str:
        """The broker URL's `namespace` option ("" for none): the result backend, the event
        history and beat's state store take it unless their own URL names one."""
        return str(parse_url(self.conf.broker_url).options.get("namespace") or "")

    @property
    def producer(self) -> Producer:
        producer: Producer = self._connection(
            "producer",
            lambda: Producer(
                self.transport,
                window=self.conf.broker_publish_window,
                on_refused=lambda refused: sending.forget_refused(self, refused),
            ),
        )
        return producer

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every pipelined publish sent so far is confirmed or finally refused.

        Raises PublishFailed naming the refused messages not reported before, PublishTimeout
        when confirms are still outstanding after `timeout` seconds. Nothing to wait for with
        ``broker_publish_confirm="each"`` or a broker that confirms every publish before
        `delay()` returns (see docs/guarantees.md, "Publishing").
        """
        producer: Producer | None = self._connections.get("producer")
        if producer is not None:
            producer.pipeline.flush(timeout)

    def pipeline(self, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """``with app.pipeline():`` pipelines the sends inside and, at the end of the block,
        waits for their confirms, raising PublishFailed if any was finally refused."""
        return pipelining.block(self, timeout)

    @property
    def signer(self) -> Signer:
        conf = self.conf
        signer: Signer = self._connection(
            "signer",
            lambda: Signer.from_settings(
                conf.message_signing_keys, conf.message_signing_key_id, conf.message_signing_ttl
            ),
        )
        return signer

    @property
    def serializer(self) -> Serializer:
        serializer: Serializer = self._connection(
            "serializer", lambda: Serializer(accept=list(self.conf.accept_content))
        )
        return serializer

    def close(self) -> None:
        """Wait for outstanding confirms (failures are logged), stop the waiter and release
        connections; later use opens new ones from `conf`."""
        try:
            self.flush(EXIT_TIMEOUT)
        except (core_errors.PublishFailed, core_errors.PublishTimeout) as exc:
            log.error("closing %r: %s", self, exc)
        self.waiter.stop()
        self.events.close()
        with self._lock:
            opened, self._connections = self._connections, {}
        for name in ("transport", "backend"):
            if name in opened:
                opened[name].close()

    # -- tasks ---------------------------------------------------------------------------

    def gen_task_name(self, fun: Callable[..., Any]) -> str:
        module = fun.__module__
        if module == "__main__" and self.main:
            module = self.main
        return f"{module}.{fun.__name__}"

    @overload
    def task(self, fun: F) -> BaseTask: ...
    @overload
    def task(
        self, *, name: str | None = ..., bind: bool = ..., **options: Any
    ) -> Callable[[F], BaseTask]: ...

    def task(self, fun: Any = None, **options: Any) -> Any:
        """Register a function as a task: ``@app.task`` or ``@app.task(bind=True, ...)``."""

        def register(f: Callable[..., Any]) -> BaseTask:
            name = options.pop("name", None) or self.gen_task_name(f)
            base = options.pop("base", None) or BaseTask
            bind = options.pop("bind", False)
            task = make_task(self, f, name, base, bind, options)
            annotate(task, self.conf.task_annotations)
            self.tasks[name] = task
            return task

        if fun is not None and callable(fun) and not options:
            return register(fun)
        return register

    def register_task(self, task: BaseTask | type[BaseTask], **options: Any) -> BaseTask:
        """Register a class-based task (a Task subclass with `run`, or an instance);
        unnamed, it is named module.ClassName."""
        del options
        instance = task() if isinstance(task, type) else task
        cls = type(instance)
        cls.name = cls.name or f"{cls.__module__}.{cls.__name__}"
        cls.app = self
        check_task_class(cls)
        annotate(instance, self.conf.task_annotations)
        self.tasks[cls.name] = instance
        return instance

    def signature(
        self,
        name: str | dict[str, Any],
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        """A signature of task `name` (registered here or not), or of a signature dict."""
        if isinstance(name, dict):
            return Signature.from_dict(name, app=self)
        return Signature(
            task=name, args=tuple(args or ()), kwargs=dict(kwargs or {}), options=options, app=self
        )

    def autodiscover_tasks(
        self,
        packages: Any = (),
        related_name: str = "tasks",
        force: bool = False,
    ) -> None:
        """Import `<package>.tasks` of each package (a list, or a callable returning one,
        such as Django's INSTALLED_APPS) when the worker imports its task modules, or now
        with `force`. A package without that module is skipped."""
        if force:
            discovery.discover(packages, related_name)
        else:
            self._discover.append((packages, related_name))

    def import_task_modules(self) -> None:
        """Import the modules named by the `imports` and `include` settings (a worker does
        this at start, so tasks defined outside the app's module are registered)."""
        for module in [*self.conf.imports, *self.conf.include]:
            importlib.import_module(module)
        for packages, related_name in self._discover:
            discovery.discover(packages, related_name)
        for task in list(self.tasks.values()):
            annotate(task, self.conf.task_annotations)
        signals.import_modules.send(sender=self)

    def get_task(self, name: str) -> BaseTask:
        try:
            return self.tasks[name]
        except KeyError:
            raise NotRegistered(f"task {name!r} is not registered with {self!r}") from None

    # -- sending -------------------------------------------------------------------------

    def send_task(
        self,
        name: str,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime | float | str | None = None,
        expires: datetime | float | str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        headers: dict[str, Any] | None = None,
        ignore_result: bool | None = None,
        serializer: str | None = None,
        link: Any = None,
        link_error: Any = None,
        task_id: str | None = None,
        retries: int = 0,
        root_id: str | None = None,
        parent_id: str | None = None,
        group_id: str | None = None,
        task: BaseTask | None = None,
        record_pending: bool = True,
        **options: Any,
    ) -> AsyncResult:
        """Publish a task by name; the worker need not share this process's code.

        countdown/eta become the broker-side delay; `expires` is seconds from now, a datetime
        or an ISO 8601 string. An argument that cannot be encoded raises EncodeError and
        nothing is sent or stored. The PENDING record and the publish may overlap
        (ResultBackend.store_during): a backend error raised after the message went out
        leaves the task to run, like a lost publisher confirm. Celery's other options
        (time limits, shadow, routing_key, compression, retry_policy, ...) are in
        `conveyor.app.call_options`; an unknown option raises TypeError naming it.
        """
        conf = self.conf
        task = task or self.tasks.get(name)
        extra = call_options.prepare(
            options,
            default_retry=conf.task_publish_retry,
            default_policy=conf.task_publish_retry_policy,
            default_compression=getattr(task, "compression", None) or conf.task_compression,
        )
        sent_at = time.time()
        zone = conf.timezone or "UTC"
        due = sent_at + countdown if countdown else (_epoch(eta, zone) if eta is not None else None)
        if expires is None:
            expires = getattr(task, "expires", None)
        if expires is None or isinstance(expires, (datetime, str)):
            expires_at = None if expires is None else _epoch(expires, zone)
        else:
            expires_at = sent_at + float(expires)
        if ignore_result is None:
            own = getattr(task, "ignore_result", None)
            ignore_result = bool(conf.task_ignore_result if own is None else own)
        if queue is not None:
            validate_queue_name(queue)  # "" is a mistake, not "the default queue"
        queue = (
            queue
            or extra.queue
            or call_options.queue_of(route(conf.task_routes, name, args, kwargs))
        )
        queue = queue or getattr(task, "queue", None) or conf.task_default_queue
        if priority is None and conf.task_inherit_parent_priority:
            priority = call_options.parent_priority()
        if priority is None:
            priority = getattr(task, "priority", None) or conf.task_default_priority
        check_call(countdown, due, expires_at, priority)
        task_id = task_id or new_task_id()
        parent = context.current()
        # Sent from inside a running task: that task is the parent (a retry is not its own).
        if parent is not None and parent.id not in (None, task_id) and parent_id is None:
            parent_id, root_id = parent.id, root_id or parent.root_id or parent.id
            parent.children.append(task_id)
        body = protocol.TaskMessage(
            id=task_id,
            task=name,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            retries=retries,
            eta=None if due is None else protocol.format_time(due),
            expires=None if expires_at is None else protocol.format_time(expires_at),
            root_id=root_id or task_id,
            parent_id=parent_id,
            group_id=group_id,
            callbacks=[] if link is None else signature_dicts(link),
            errbacks=[] if link_error is None else signature_dicts(link_error),
            ignore_result=ignore_result,
        )
        codec = serializer or getattr(task, "serializer", None) or conf.task_serializer
        headers = publish_signals.before(body, queue, headers)
        message = protocol.encode(
            body,
            self.serializer,
            codec=codec,
            priority=priority or 0,
            headers=extra.merged_headers(headers),
            compression=extra.compression,
            reply_to=extra.reply_to,
        )
        store_pending = record_pending and not ignore_result
        delay = 0.0 if due is None else max(0.0, due - sent_at)
        if self.signer.enabled:
            message = self.signer.sign(message, delay)
        # The PENDING write and the publish overlap where the backend can (both are done
        # when this returns); a ready state stored first is never replaced.
        pending = ResultRecord(task_id, states.PENDING, parent_id=parent_id)
        ticket = sending.send(
            self, queue, message, delay, pending if store_pending else None, extra.backoff
        )
        self.events.task_sent(body, queue)
        publish_signals.after(body, queue, message.headers)
        result = AsyncResult(task_id, app=self)
        result.ignored = ignore_result
        result.publish_ticket = ticket
        return result

    # -- results -------------------------------------------------------------------------

    def AsyncResult(self, task_id: str) -> AsyncResult:
        return AsyncResult(task_id, app=self)

    @cached_property
    def _known_exceptions(self) -> dict[str, type[BaseException]]:
        return _exception_classes(task_exceptions, core_errors)

    def rebuild_exception(self, record: ResultRecord) -> BaseException:
        """The exception of a FAILURE record: conveyor's own classes, the tasks' modules'
        exception classes and safe built-ins are rebuilt; anything else is a RemoteError.
        Nothing named by stored data is ever imported."""
        known = dict(self._known_exceptions)
        modules = {t.__module__ for t in map(type, self.tasks.values())}
        known.update(_exception_classes(*(sys.modules[m] for m in modules if m in sys.modules)))
        return rebuild_exception(record, known)
