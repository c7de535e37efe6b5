"""Task: the class behind `@app.task`, with Celery's options, hooks and calling API."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from conveyor.app import context, eager
from conveyor.app import replace as replacing
from conveyor.app.arguments import check_arguments
from conveyor.app.call_checks import check_task_options
from conveyor.app.exceptions import MaxRetriesExceededError, Retry
from conveyor.app.rate_limit import parse_rate
from conveyor.backends.base import ResultRecord
from conveyor.canvas.signature import Signature

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.eager import EagerResult
    from conveyor.app.result import AsyncResult
    from conveyor.canvas.groups import Chunks

# The send options an eager run uses; the others are accepted and have nothing to do.
EAGER_OPTIONS = ("task_id", "throw", "link", "link_error", "headers", "retries")
# Options `@app.task(...)` accepts besides name, bind and base.
TASK_OPTIONS = frozenset(
    {
        "queue",
        "max_retries",
        "default_retry_delay",
        "autoretry_for",
        "dont_autoretry_for",
        "retry_backoff",
        "retry_backoff_max",
        "retry_jitter",
        "retry_kwargs",
        "acks_late",
        "time_limit",
        "soft_time_limit",
        "ignore_result",
        "track_started",
        "serializer",
        "priority",
        "rate_limit",
        "reject_on_worker_lost",
        "store_errors_even_if_ignored",
        "expires",
        "typing",
        "throws",
        "trail",
        "compression",
    }
)
# Accepted and dropped: conveyor creates every task at once, so nothing is lazy.
IGNORED_TASK_OPTIONS = frozenset({"lazy"})


class Task:
    """A registered task. Subclass it and pass `base=` to share hooks between tasks.

    Options left as None fall back to the app's settings (task_acks_late, ...).
    """

    name: str = ""
    app: ClassVar[Conveyor]
    bind: ClassVar[bool] = False
    queue: str | None = None
    priority: int | None = None
    serializer: str | None = None
    max_retries: int | None = 3
    default_retry_delay: float = 180.0
    autoretry_for: tuple[type[BaseException], ...] = ()
    dont_autoretry_for: tuple[type[BaseException], ...] = ()
    retry_kwargs: dict[str, Any] = {}
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600.0
    retry_jitter: bool = True
    acks_late: bool | None = None
    track_started: bool | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    ignore_result: bool | None = None
    rate_limit: str | float | None = None  # Celery's "10/s"; enforced by each worker
    #: Celery's names, with Celery's defaults; docs/celery.md says what each does here.
    reject_on_worker_lost: bool | None = None
    store_errors_even_if_ignored: bool = False
    expires: float | None = None
    typing: bool = True
    throws: tuple[type[BaseException], ...] = ()
    trail: bool = True
    compression: str | None = None

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"task {self.name!r} has no run()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run in this process, now, as a plain function call."""
        with context.running(context.Context(task=self.name, args=args, kwargs=kwargs)):
            return self.run(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<@task: {self.name}>"

    @property
    def request(self) -> context.Context:
        return context.current_or_direct()

    # -- calling -----------------------------------------------------------------------

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult:
        """Send the task; see `Conveyor.send_task` for the options. Arguments that do not
        fit the task's signature raise TypeError here (`typing`); with `task_always_eager`
        the task runs here instead (`apply`)."""
        check_arguments(self, args, kwargs)
        if eager.wanted(self.app):
            return eager.apply(
                self,
                args,
                kwargs,
                **{k: options[k] for k in EAGER_OPTIONS if options.get(k) is not None},
            )
        return self.app.send_task(self.name, args, kwargs, task=self, **options)

    def apply(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> EagerResult:
        """Run the task in this process now and return an EagerResult (conveyor.app.eager).
        `throw=True` raises a failure at once; other send options are accepted and unused."""
        return eager.apply(
            self, args, kwargs, **{k: options[k] for k in EAGER_OPTIONS if k in options}
        )

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)

    def signature(
        self,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        immutable: bool = False,
        **options: Any,
    ) -> Signature:
        return Signature(self.name, tuple(args), dict(kwargs or {}), options, immutable, self.app)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return self.signature(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        return self.signature(args, kwargs, immutable=True)

    def map(self, it: Any) -> Signature:
        from conveyor.canvas.groups import xmap

        return xmap(self.s(), it)

    def starmap(self, it: Any) -> Signature:
        from conveyor.canvas.groups import xstarmap

        return xstarmap(self.s(), it)

    def chunks(self, it: Any, n: int) -> Chunks:
        from conveyor.canvas.groups import chunks

        return chunks(self.s(), it, n)

    def AsyncResult(self, task_id: str) -> AsyncResult:
        return self.app.AsyncResult(task_id)

    # -- inside a running task ---------------------------------------------------------

    def retry(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Send this task again after a broker-side delay and end this run with `Retry`
        (returned instead of raised with ``throw=False``; `options` go to `apply_async`).

        Past `max_retries` the given `exc` is raised (or MaxRetriesExceededError), which ends
        the task in FAILURE with that error.
        """
        request = self.request
        limit = self.max_retries if max_retries is None else max_retries
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"task {self.name}[{request.id}] exhausted its {limit} retries"
            )
        if request.is_eager:
            raise eager.retry(self, request, args, kwargs, exc)
        if countdown is None and eta is None:
            countdown = self.default_retry_delay
        send: dict[str, Any] = {
            "task_id": request.id,
            "retries": request.retries + 1,
            "countdown": countdown,
            "eta": eta,
            "expires": request.expires,
            "root_id": request.root_id,
            "parent_id": request.parent_id,
            "link": request.callbacks or None,
            "link_error": request.errbacks or None,
            "queue": request.delivery_info.get("queue"),
            "priority": request.delivery_info.get("priority"),
            "headers": request.headers,
            "ignore_result": request.ignore_result,
            "record_pending": False,
        }
        self.app.send_task(
            self.name,
            request.args if args is None else args,
            request.kwargs if kwargs is None else kwargs,
            task=self,
            **{**send, **options},
        )
        retry = Retry(exc=exc, when=countdown or 0.0)
        if throw:
            raise retry
        return retry

    def replace(self, sig: Any) -> Any:
        """Hand this run's place and id to `sig` (conveyor.app.replace): the caller waiting
        on this task gets `sig`'s result. Ends this run (by raising Ignore)."""
        return replacing.replace(self, sig)

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None
    ) -> None:
        """Store a custom state (e.g. PROGRESS) with `meta` as its result."""
        task_id = task_id or self.request.id
        if task_id is None:
            raise ValueError("update_state needs a task id outside a running task")
        self.app.backend.store(ResultRecord(task_id, state or "PENDING", result=meta))

    # -- hooks (override in a base class) ----------------------------------------------

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        """Called before the task runs (on a worker and in `apply`)."""

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        """Called after the task returned and its result was stored."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Called after the task failed and its FAILURE was stored."""

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Called after the task asked for a retry and RETRY was stored."""

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Called after every run, whatever its outcome."""


def check_task_class(cls: type[Task]) -> None:
    """Refuse a task class whose options cannot work (a bad rate_limit, ...)."""
    parse_rate(cls.rate_limit)
    check_task_options(cls)


def make_task(
    app: Conveyor,
    fun: Callable[..., Any],
    name: str,
    base: type[Task],
    bind: bool,
    options: dict[str, Any],
) -> Task:
    """A Task subclass of `base` whose `run` is `fun` (taking `self` first when bound)."""
    options = {k: v for k, v in options.items() if k not in IGNORED_TASK_OPTIONS}
    unknown = set(options) - TASK_OPTIONS
    if unknown:
        raise TypeError(f"unknown task options: {', '.join(sorted(unknown))}")
    run = fun if bind else staticmethod(fun)
    attrs = {
        "name": name,
        "app": app,
        "bind": bind,
        "run": run,
        "__doc__": fun.__doc__,
        "__module__": fun.__module__,
        "__wrapped__": fun,
        **options,
    }
    cls = type(fun.__name__, (base,), attrs)
    check_task_class(cls)
    return cls()
