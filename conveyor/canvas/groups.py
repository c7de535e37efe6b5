"""Group: tasks sent together, whose results come back as one GroupResult, in order.

Partial args given to a group go to every member (that is how a group inside a chain gets
the previous result). On the wire: ``{"subtask_type": "group", "tasks": [...],
"options": {...}}``; the members carry the group id once frozen.
"""

from __future__ import annotations

from typing import Any

from conveyor.canvas.composite import Composite
from conveyor.canvas.errors import InvalidWorkflow
from conveyor.canvas.results import GroupResult
from conveyor.canvas.signature import START_ONLY, Signature, maybe_signature
from conveyor.core.message import new_task_id


class Group(Composite):
    """``group(add.s(1, 1), add.s(2, 2))``: run the tasks in parallel."""

    subtask_type = "group"
    part_name = "group member"

    def _add_link(self, kind: str, link: Signature) -> None:
        """Each member gets the callback (or errback) for its own result, as with Celery."""
        for task in self.tasks:
            task._add_link(kind, link.clone())

    def __repr__(self) -> str:
        return f"group({', '.join(map(repr, self.tasks))})"

    def freeze(self, task_id: str | None = None) -> GroupResult:  # type: ignore[override]
        """Fix the group id and every member's task id; the GroupResult to come."""
        group_id = task_id or self.options.get("group_id") or new_task_id()
        self.options["group_id"] = group_id
        results = []
        for task in self.tasks:
            if task.subtask_type is None:  # a nested group or chord keeps its own id
                task.options["group_id"] = group_id
            results.append(task.freeze())
        return GroupResult(group_id, results, app=self.bound_app())

    def clone(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Group:
        copy = Group(*(t.clone(args, kwargs) for t in self.tasks), app=self.app)
        copy.set(**{**self.options, **options})
        return copy

    def apply_async(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> GroupResult:
        """Send every member (with `args` in front of each one's own) and return the
        GroupResult; `options` go to every member."""
        group = self.clone(args, kwargs)
        frozen = group.freeze(options.pop("task_id", None))
        shared = {k: v for k, v in group.options.items() if k not in START_ONLY}
        # What each member's send returns: the same ids, or an eager run's results.
        sent = [task.apply_async(**{**shared, **options}) for task in group.tasks]
        return GroupResult(frozen.id, sent, app=frozen.app)

    def __call__(self, *args: Any, **kwargs: Any) -> GroupResult:
        """Celery sends a group when it is called."""
        return self.apply_async(args, kwargs)


class Chunks:
    """``add.chunks(pairs, 10)``: the items split into tasks of `size` calls each."""

    def __init__(self, task: Signature, items: Any, size: int) -> None:
        if not isinstance(size, int) or size < 1:
            raise InvalidWorkflow(f"chunks of {task.task!r} need a size of 1 or more, not {size!r}")
        self.task = task
        self.items = [list(item) for item in items]
        self.size = size

    def group(self) -> Group:
        parts = [self.items[i : i + self.size] for i in range(0, len(self.items), self.size)]
        return Group(*(xstarmap(self.task, part) for part in parts), app=self.task.app)

    def apply_async(self, **options: Any) -> GroupResult:
        return self.group().apply_async(**options)

    def delay(self) -> GroupResult:
        return self.apply_async()

    def __call__(self) -> GroupResult:
        return self.apply_async()


def xmap(task: Any, items: Any) -> Signature:
    """One task that calls `task` on each item in turn and returns the list of results."""
    task = maybe_signature(task)
    return Signature("conveyor.map", (), {"task": task.to_dict(), "it": list(items)}, app=task.app)


def xstarmap(task: Any, items: Any) -> Signature:
    """As `xmap`, but each item is a tuple of arguments."""
    task = maybe_signature(task)
    return Signature(
        "conveyor.starmap",
        (),
        {"task": task.to_dict(), "it": [list(item) for item in items]},
        app=task.app,
    )


def chunks(task: Any, items: Any, size: int) -> Chunks:
    return Chunks(maybe_signature(task), items, size)
