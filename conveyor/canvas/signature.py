"""Signature: a task call packed as data (`add.s(2, 2)`), the unit every workflow is made of.

On the wire a signature is ``{"task": name, "args": [...], "kwargs": {...},
"options": {...}, "immutable": bool}``; groups, chords and chains add ``"subtask_type"``
and their parts (see their modules). ``dict(sig)`` gives that dict and ``signature(d)``
reads it back, so a workflow can be stored or sent as JSON.

Partial application, as in Celery: args given when the signature is called go in front of
its own and kwargs are merged, which is how a callback receives its parent's return value.
An immutable signature (`task.si(...)`) ignores them.

`options` hold `send_task` options. Callbacks (`link`) and errbacks (`link_error`) are kept
there as lists of signatures and become dicts on the wire; a link that would make a cycle
is refused when it is added. `freeze()` fixes a signature's task id before it is sent, so a
workflow's results can be known, and waited on, before a worker publishes its later steps.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from conveyor.canvas.errors import InvalidWorkflow
from conveyor.core.message import new_task_id

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.result import AsyncResult
    from conveyor.app.task import Task
    from conveyor.canvas.chains import Chain

#: The key of a callback entry that counts its task into a chord (canvas.join) instead of
#: calling a signature. It passes through `signature_dicts` unchanged.
CHORD_JOIN = "chord"
_LINK_OPTIONS = ("link", "link_error")
#: Options that concern one task's own start or place, not the later steps of a workflow
#: (routing options such as queue and priority pass on: see `inherit`).
START_ONLY = frozenset(
    {"countdown", "eta", "parent_id", "root_id", "retries", "task_id", "group_id", *_LINK_OPTIONS}
)
_SHAPES: dict[str, type[Signature]] = {}


@functools.cache
def _send_options() -> frozenset[str]:
    """The options `send_task` takes (its keyword parameters and Celery's other call
    options, conveyor.app.call_options): what a signature may carry."""
    from conveyor.app.base import Conveyor
    from conveyor.app.call_options import CALL_OPTIONS

    params = inspect.signature(Conveyor.send_task).parameters
    named = {name for name, p in params.items() if p.kind is p.KEYWORD_ONLY and name != "task"}
    return frozenset(named | CALL_OPTIONS)


class Signature:
    """One task call: name, args, kwargs, send options, and whether it takes partial args."""

    #: The wire name of a composite shape (group, chord, chain); None for a task call.
    subtask_type: ClassVar[str | None] = None

    def __init__(
        self,
        task: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        immutable: bool = False,
        app: Conveyor | None = None,
    ) -> None:
        if not isinstance(task, str) or not task:
            raise InvalidWorkflow(f"a signature needs a task name, not {task!r}")
        if not isinstance(args, (list, tuple)):
            raise InvalidWorkflow(f"args of {task!r} must be a list, not {type(args).__name__}")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise InvalidWorkflow(f"kwargs of {task!r} must be a dict, not {type(kwargs).__name__}")
        self.task = task
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.options: dict[str, Any] = {}
        self.immutable = bool(immutable)
        self.app = app
        self.set(**(options or {}))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.subtask_type is not None:
            _SHAPES[cls.subtask_type] = cls

    # -- data ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "options": self._options_dict(),
            "immutable": self.immutable,
        }

    def _options_dict(self) -> dict[str, Any]:
        options = dict(self.options)
        for name in _LINK_OPTIONS:
            if name in options:
                options[name] = [link.to_dict() for link in options[name]]
        return options

    @classmethod
    def from_dict(cls, data: Any, app: Conveyor | None = None) -> Signature:
        """The signature (or group, chord, chain) that `data` describes; InvalidWorkflow
        names what is wrong with a dict of an unknown shape."""
        if isinstance(data, Signature):
            return data
        if not isinstance(data, dict):
            raise InvalidWorkflow(f"a signature must be a dict, not {type(data).__name__}")
        if CHORD_JOIN in data:
            return ChordJoin(data[CHORD_JOIN], data.get("size"), app)
        kind = data.get("subtask_type")
        if kind is not None:
            shape = _SHAPES.get(kind)
            if shape is None:
                raise InvalidWorkflow(f"unknown signature type {kind!r}")
            return shape.from_dict(data, app)
        if "task" not in data:
            raise InvalidWorkflow(f"a signature dict needs 'task'; got keys {sorted(data)}")
        return Signature(
            data["task"],
            data.get("args") or (),
            data.get("kwargs") or {},
            data.get("options") or {},
            bool(data.get("immutable", False)),
            app,
        )

    def keys(self) -> list[str]:
        """With `__getitem__`, makes ``dict(sig)`` the wire dict, as with Celery."""
        return list(self.to_dict())

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Signature):
            return self.to_dict() == other.to_dict()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dict

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task}{'!' if self.immutable else ''}({', '.join(parts)})"

    # -- building ------------------------------------------------------------------------

    def set(self, **options: Any) -> Signature:
        """Add send options (queue, countdown, link, ...); returns self for chaining."""
        allowed = _send_options()
        for name, value in options.items():
            if name not in allowed:
                raise InvalidWorkflow(
                    f"{self!r}: unknown option {name!r} (allowed: {', '.join(sorted(allowed))})"
                )
            if name in _LINK_OPTIONS:
                self.options[name] = []
                for link in signature_list(value, self.app):
                    self._add_link(name, link)
            else:
                self.options[name] = value
        return self

    def inherit(self, options: dict[str, Any]) -> Signature:
        """Take the routing options (queue, priority, ...) of a workflow this signature is
        a later step of, where it sets none of its own; returns self."""
        return self.set(
            **{k: v for k, v in options.items() if k not in START_ONLY and k not in self.options}
        )

    def _add_link(self, kind: str, link: Signature) -> None:
        if any(s is self for s in link.walk()):
            raise InvalidWorkflow(f"{link!r} as {kind} of {self!r} would make a cycle")
        self.options.setdefault(kind, []).append(link)

    def walk(self) -> Iterator[Signature]:
        """This signature and every one it links to or contains."""
        yield self
        for name in _LINK_OPTIONS:
            for link in self.options.get(name, ()):
                yield from link.walk()

    def link(self, callback: Any) -> Signature:
        """Call `callback` with this task's return value when it succeeds; returns it."""
        callback = maybe_signature(callback, self.app)
        self._add_link("link", callback)
        return callback

    def link_error(self, errback: Any) -> Signature:
        """Call `errback` when this task fails: with the task id, or inline in the worker as
        ``errback(request, exc, traceback)`` if its function takes several arguments."""
        errback = maybe_signature(errback, self.app)
        self._add_link("link_error", errback)
        return errback

    on_error = link_error

    def clone(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Signature:
        """A copy with partial args in front, kwargs merged (unless immutable) and
        `options` added."""
        copy = type(self).from_dict(self.to_dict(), self.app)
        if not self.immutable:
            copy.args = tuple(args) + copy.args
            copy.kwargs.update(kwargs or {})
        copy.set(**options)
        return copy

    def freeze(self, task_id: str | None = None) -> AsyncResult:
        """Fix the task id this signature will run under; its result, before sending."""
        from conveyor.app.result import AsyncResult

        if task_id is not None or "task_id" not in self.options:
            self.options["task_id"] = task_id or new_task_id()
        return AsyncResult(self.options["task_id"], app=self.bound_app())

    @property
    def id(self) -> str | None:
        """The frozen task id, if any."""
        task_id: str | None = self.options.get("task_id")
        return task_id

    def frozen_ids(self) -> Iterator[str]:
        """The task ids this signature and its callbacks will run under, as far as frozen:
        what is marked as not run when the task before it fails."""
        if self.id is not None:
            yield self.id
        for link in self.options.get("link", ()):
            yield from link.frozen_ids()

    # -- calling -------------------------------------------------------------------------

    def bound_app(self) -> Conveyor:
        if self.app is None:
            from conveyor.app.base import default_app

            self.app = default_app()
        return self.app

    @property
    def type(self) -> Task:
        """The registered task this signature calls."""
        return self.bound_app().get_task(self.task)

    def apply_async(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Any:
        """Send the task; `args` are prepended and `kwargs` merged unless immutable."""
        app = self.bound_app()
        call_args = self.args if self.immutable else tuple(args) + self.args
        call_kwargs = self.kwargs if self.immutable else {**self.kwargs, **(kwargs or {})}
        send = {**self._options_dict(), **options}
        task = app.tasks.get(self.task)
        if task is not None:  # through the task, as Celery: typing, task_always_eager
            return task.apply_async(call_args, call_kwargs, **send)
        return app.send_task(self.task, call_args, call_kwargs, **send)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here and now, with partial application (no worker involved)."""
        call_args = self.args if self.immutable else args + self.args
        call_kwargs = self.kwargs if self.immutable else {**self.kwargs, **kwargs}
        return self.type(*call_args, **call_kwargs)

    def __or__(self, other: Any) -> Chain:
        from conveyor.canvas.chains import Chain

        return Chain(self, other, app=self.app)


class ChordJoin(Signature):
    """The callback entry that counts its task into chord `group_id` of `size` header
    tasks (canvas.join) instead of calling a task. It rides along with the header task
    it was given to: into a chain's last step, a nested chord's body."""

    def __init__(self, group_id: Any, size: Any, app: Conveyor | None = None) -> None:
        if not isinstance(group_id, str) or not isinstance(size, int) or size < 1:
            raise InvalidWorkflow(f"a chord join needs a group id and a size, not {size!r}")
        super().__init__("conveyor.chord_join", app=app)
        self.group_id, self.size = group_id, size

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, CHORD_JOIN: self.group_id, "size": self.size}

    def clone(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Signature:
        return self

    def frozen_ids(self) -> Iterator[str]:
        return iter(())

    def apply_async(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Any:
        raise InvalidWorkflow("a chord join is counted by the worker, never sent")


def maybe_signature(value: Any, app: Conveyor | None = None) -> Signature:
    """A signature from a signature, a registered task (called with no args) or a dict."""
    if isinstance(value, Signature):
        return value
    if isinstance(value, dict):
        return Signature.from_dict(value, app)
    make = getattr(value, "s", None)
    if callable(make):
        made = make()
        if isinstance(made, Signature):
            return made
    raise InvalidWorkflow(f"expected a signature or a task, not {type(value).__name__} {value!r}")


def signature_list(value: Any, app: Conveyor | None = None) -> list[Signature]:
    """Signatures from a link option: one item or a list of them."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [maybe_signature(item, app) for item in items]


def signature(
    value: Any,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    immutable: bool = False,
    app: Conveyor | None = None,
) -> Signature:
    """``signature("tasks.add", args=(2, 2))``, or the signature a dict (``dict(sig)``)
    describes, as with Celery."""
    if isinstance(value, str):
        return Signature(value, args, kwargs, options, immutable, app)
    return maybe_signature(value, app)


def signature_dicts(value: Any) -> list[dict[str, Any]]:
    """Normalise a link/link_error option (a signature, a task, a dict, or a list of them)
    to wire dicts. Each callback gets a task id here unless it has one, so a resent
    callback (after a worker crash) is recognised as the same task; chord joins pass as
    they are."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    result = []
    for item in items:
        data = maybe_signature(item).to_dict()
        if data.get("subtask_type") is None and CHORD_JOIN not in data:
            data["options"].setdefault("task_id", new_task_id())
        result.append(data)
    return result
