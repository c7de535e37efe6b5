"""Signature: a task call packed as data (`add.s(2, 2)`), used for link/link_error.

On the wire a signature is ``{"task": name, "args": [...], "kwargs": {...},
"options": {...}, "immutable": bool}``; a callback that is not immutable receives the parent's
return value (or, for an errback, the failed task's id) as its first argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.result import AsyncResult


@dataclass
class Signature:
    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    immutable: bool = False
    app: Conveyor | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "options": dict(self.options),
            "immutable": self.immutable,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], app: Conveyor | None = None) -> Signature:
        return cls(
            task=data["task"],
            args=tuple(data.get("args") or ()),
            kwargs=dict(data.get("kwargs") or {}),
            options=dict(data.get("options") or {}),
            immutable=bool(data.get("immutable", False)),
            app=app,
        )

    def set(self, **options: Any) -> Signature:
        """Add call options (queue, countdown, ...); returns self for chaining."""
        self.options.update(options)
        return self

    def apply_async(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> AsyncResult:
        """Send the task; `args` are prepended unless the signature is immutable."""
        if self.app is None:
            raise RuntimeError(f"signature {self.task!r} is not bound to an app")
        call_args = self.args if self.immutable else tuple(args) + tuple(self.args)
        call_kwargs = self.kwargs if self.immutable else {**self.kwargs, **(kwargs or {})}
        return self.app.send_task(self.task, call_args, call_kwargs, **{**self.options, **options})

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)


def signature_dicts(value: Any) -> list[dict[str, Any]]:
    """Normalise a link/link_error option (a signature, a task, or a list of them)."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    result = []
    for item in items:
        if isinstance(item, Signature):
            result.append(item.to_dict())
        elif hasattr(item, "s"):
            result.append(item.s().to_dict())
        elif isinstance(item, dict) and "task" in item:
            result.append(Signature.from_dict(item).to_dict())
        else:
            raise TypeError(f"link expects signatures or tasks, not {type(item).__name__}")
    return result
