"""The shape that groups and chains share: a signature made of a list of signatures."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from conveyor.canvas.errors import InvalidWorkflow
from conveyor.canvas.signature import Signature, maybe_signature

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor


class Composite(Signature):
    """Parts in `tasks`; on the wire ``{"subtask_type": ..., "tasks": [...], "options": ...}``."""

    #: What a part is called in an error message ("group member 2: ...").
    part_name: str = "part"

    def __init__(self, *tasks: Any, app: Conveyor | None = None, **options: Any) -> None:
        """`Composite(a, b)` and `Composite([a, b])` (or a generator) alike."""
        if len(tasks) == 1 and not isinstance(tasks[0], (Signature, dict)):
            with contextlib.suppress(TypeError):
                tasks = tuple(tasks[0])
        parts = []
        for index, task in enumerate(tasks):
            try:
                parts.append(maybe_signature(task, app))
            except InvalidWorkflow as exc:
                raise InvalidWorkflow(f"{self.part_name} {index}: {exc}") from None
        app = app or next((p.app for p in parts if p.app is not None), None)
        super().__init__(f"conveyor.{self.subtask_type}", app=app)
        self.tasks = self.parts(parts)
        self.set(**options)

    def parts(self, parts: list[Signature]) -> list[Signature]:
        """The parts as kept (a chain flattens the chains among them)."""
        return parts

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "subtask_type": self.subtask_type,
            "tasks": [task.to_dict() for task in self.tasks],
            "options": self._options_dict(),
            "args": [],
            "kwargs": {},
            "immutable": False,
        }

    @classmethod
    def from_dict(cls, data: Any, app: Conveyor | None = None) -> Composite:
        tasks = data.get("tasks")
        if not isinstance(tasks, list):
            raise InvalidWorkflow(f"a {cls.subtask_type} dict needs a 'tasks' list")
        return cls(*tasks, app=app, **(data.get("options") or {}))

    def walk(self) -> Iterator[Signature]:
        yield from super().walk()
        for task in self.tasks:
            yield from task.walk()

    def frozen_ids(self) -> Iterator[str]:
        for task in self.tasks:
            yield from task.frozen_ids()

    def __len__(self) -> int:
        return len(self.tasks)
