"""Chord: a group (the header) whose ordered results are passed to one task (the body).

Sending a chord writes one record to the result backend (`results.save_group`): the header
ids in order and the body. Each header message carries only a small join entry,
``{"task": "conveyor.chord_join", "chord": group_id, "size": n}``, among its callbacks, so
a chord of n tasks writes O(n) bytes, not O(n^2). The worker that finishes a header task
counts it (canvas.join); the one that completes the count reads the header results by id
and sends the body, exactly once (see join.py for how duplicates and crashes are handled).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from conveyor.app import eager, states
from conveyor.app.result import AsyncResult
from conveyor.canvas.errors import InvalidWorkflow
from conveyor.canvas.groups import Group
from conveyor.canvas.results import earliest, save_group
from conveyor.canvas.signature import ChordJoin, Signature, maybe_signature, signature_list

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor


class Chord(Signature):
    """``chord(header)(body)`` or ``chord(header, body)``: run `body` with the header's
    results once every header task has succeeded."""

    subtask_type = "chord"

    def __init__(
        self, header: Any, body: Any = None, app: Conveyor | None = None, **options: Any
    ) -> None:
        group = header if isinstance(header, Group) else Group(header, app=app)
        try:
            self.body = None if body is None else maybe_signature(body, app)
        except InvalidWorkflow as exc:
            raise InvalidWorkflow(f"chord body: {exc}") from None
        app = app or group.app or (self.body.app if self.body is not None else None)
        super().__init__("conveyor.chord", app=app)
        self.header = group
        self.set(**options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "subtask_type": self.subtask_type,
            "header": self.header.to_dict(),
            "body": None if self.body is None else self.body.to_dict(),
            "options": self._options_dict(),
            "args": [],
            "kwargs": {},
            "immutable": False,
        }

    @classmethod
    def from_dict(cls, data: Any, app: Conveyor | None = None) -> Chord:
        if "header" not in data:
            raise InvalidWorkflow("a chord dict needs a 'header'")
        header = Signature.from_dict(data["header"], app)
        body = data.get("body")
        return cls(
            header,
            None if body is None else Signature.from_dict(body, app),
            app,
            **(data.get("options") or {}),
        )

    def walk(self) -> Iterator[Signature]:
        yield from super().walk()
        yield from self.header.walk()
        if self.body is not None:
            yield from self.body.walk()

    def frozen_ids(self) -> Iterator[str]:
        yield from self.header.frozen_ids()
        if self.body is not None:
            yield from self.body.frozen_ids()

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    def _body(self) -> Signature:
        if self.body is None:
            raise InvalidWorkflow(f"{self!r} has no body: use chord(header)(body)")
        return self.body

    def _add_link(self, kind: str, link: Signature) -> None:
        """A chord's callbacks and errbacks are its body's: they follow the body."""
        self._body()._add_link(kind, link)

    def clone(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Chord:
        copy = Chord(
            self.header.clone(args, kwargs),
            None if self.body is None else self.body.clone(),
            self.app,
        )
        copy.set(**{**self.options, **options})
        return copy

    def freeze(self, task_id: str | None = None) -> AsyncResult:
        """Fix every id; the body's result, whose `parent` is the header's GroupResult."""
        header = self.header.freeze()
        result = self._body().freeze(task_id)
        earliest(result).parent = header
        return result

    def apply_async(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> AsyncResult:
        """Save the join record, then send the header (with `args` in front of each
        task's own). An empty header sends the body at once with ``[]``. The options go to
        every header task, and the routing ones (queue, ...) to the body too."""
        body = options.pop("body", None)
        chord = self.clone(args, kwargs)
        if body is not None:
            chord.body = maybe_signature(body, self.app)
        result = chord.freeze(options.pop("task_id", None))
        options = {**chord.options, **options}
        options.pop("group_id", None)  # a group's id for its plain members, not this chord's
        # Callbacks given at send time (a chord inside a chain or a chord header) follow
        # the body, like the chord's own.
        for kind in ("link", "link_error"):
            for link in signature_list(options.pop(kind, None), self.app):
                chord._body()._add_link(kind, link)
        chord._body().inherit(options)
        app = chord.bound_app()
        if eager.wanted(app):
            return chord._run_here(result, options)
        size = len(chord.header.tasks)
        if size == 0:
            chord._body().apply_async(([],), **options)
            return result
        header = earliest(result)
        ids = [member.id for member in header.results]
        save_group(app, header.id, ids, {"body": chord._body().to_dict()})
        for task in chord.header.tasks:
            task.link(ChordJoin(header.id, size, app))
            # Its result must be stored: the body reads it from the backend.
            task.apply_async(**{**options, "ignore_result": False})
        return result

    def _run_here(self, result: Any, options: dict[str, Any]) -> Any:
        """Under `task_always_eager` (app/eager.py): the header runs here, member by member,
        then the body with their values, unless a member failed: then the body is not run,
        its result raises that member's error and its errbacks are called."""
        header = self.header.apply_async(**options)
        earliest(result).parent = header
        failed = next((r for r in header.results if r.state == states.FAILURE), None)
        if failed is None:
            self._body().apply_async((header.get(propagate=False),), **options)
        else:  # the body fails and its errbacks are called, as canvas/join.py does
            body = self._body()
            eager.mark_not_run(self.bound_app(), body.frozen_ids(), failed)
            eager.failed(failed, [e.to_dict() for e in body.options.get("link_error", ())])
        return eager.outcome(result)

    def __call__(self, body: Any = None, **options: Any) -> AsyncResult:
        """``chord(header)(body)`` sends the chord, as with Celery."""
        return self.apply_async(body=body, **options)
