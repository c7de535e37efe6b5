"""Chain: tasks run one after another, each result given to the next (`a.s() | b.s()`).

A chain is sent as its first step with the rest nested in its callbacks: each step links
the next, so the worker that stores a step's result publishes the next step, and no
client needs to stay online. Every step's task id is frozen when the chain is sent, so the
chain's result (the last step's) and `.parent` back to the first are known at once, and a
failed step can mark the steps after it as not run.

A chain inside a chain is flattened; a group followed by a step becomes a chord (the
group's results, in order, are the step's first argument). The chain's own `link` goes to
its last step, its `link_error` to every step. Call options (queue, priority, ...) apply to
every step that does not set its own; countdown, eta and parent ids to the first step.
"""

from __future__ import annotations

import itertools
from typing import Any

from conveyor.app import eager
from conveyor.canvas.chords import Chord
from conveyor.canvas.composite import Composite
from conveyor.canvas.errors import InvalidWorkflow
from conveyor.canvas.groups import Group
from conveyor.canvas.results import earliest
from conveyor.canvas.signature import START_ONLY, Signature, maybe_signature

#: Call options that concern only the chain's start.
_FIRST_STEP_ONLY = START_ONLY - {"task_id", "link", "link_error"}


class Chain(Composite):
    """``chain(a.s(1), b.s(), c.s(x))``, the same as ``a.s(1) | b.s() | c.s(x)``."""

    subtask_type = "chain"
    part_name = "chain step"

    def parts(self, parts: list[Signature]) -> list[Signature]:
        steps: list[Signature] = []
        for part in parts:
            steps.extend(part.flattened() if isinstance(part, Chain) else [part])
        if not steps:
            raise InvalidWorkflow("a chain needs at least one task")
        return steps

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.tasks))

    def __or__(self, other: Any) -> Chain:
        return Chain(self, other, app=self.app)

    def clone(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Chain:
        """A copy whose first step takes the partial args."""
        steps = [task.clone() for task in self.tasks]
        steps[0] = steps[0].clone(args, kwargs)
        copy = Chain(*steps, app=self.app)
        copy.set(**{**self.options, **options})
        return copy

    def flattened(self) -> list[Signature]:
        """Copies of the steps carrying this chain's options: what a chain that holds this
        one runs in its place."""
        return self._steps({}, {}, self.options)

    def _steps(
        self, first: dict[str, Any], call: dict[str, Any], own: dict[str, Any]
    ) -> list[Signature]:
        """Copies of the steps, groups followed by a step made chords, with the chain's
        options applied (`first` only to the first step, `call` and `own` to all)."""
        merged: list[Signature] = []
        for task in self.tasks:
            step = task.clone()
            before = merged[-1] if merged else None
            if isinstance(before, Group):
                merged[-1] = Chord(before, step, self.app)
            elif isinstance(before, Chord) and before.body is None:
                before.body = step
            else:
                merged.append(step)
        shared = {**own, **call}
        links, errbacks = shared.get("link", []), shared.get("link_error", [])
        for step in merged:
            step.inherit(shared)
            for errback in errbacks:
                step.link_error(maybe_signature(errback, self.app).clone())
        for callback in links:
            merged[-1].link(maybe_signature(callback, self.app).clone())
        merged[0].set(**first)
        return merged

    def _frozen(self, steps: list[Signature], task_id: str | None) -> Any:
        """Freeze every step (the last as `task_id`); each result's `parent` is the one
        before. The last result."""
        result: Any = None
        for index, step in enumerate(steps):
            previous = result
            result = step.freeze(task_id if index == len(steps) - 1 else None)
            earliest(result).parent = previous
        return result

    def freeze(self, task_id: str | None = None) -> Any:
        """Fix every step's id (kept when the chain is sent later); the last result."""
        own = dict(self.options)
        task_id = task_id or own.pop("task_id", None)
        steps = self._steps({}, {}, own)
        result = self._frozen(steps, task_id)
        self.tasks, self.options = steps, {"task_id": result.id}
        return result

    def apply_async(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> Any:
        """Send the first step with the rest linked behind it; the last step's result.
        Under `task_always_eager` the send runs every step here (app/eager.py), and the
        result is the last step's EagerResult."""
        chain = self.clone(args, kwargs)
        task_id = options.pop("task_id", None) or chain.options.get("task_id")
        first = {k: options.pop(k) for k in list(options) if k in _FIRST_STEP_ONLY}
        steps = chain._steps(first, options, chain.options)
        result = self._frozen(steps, task_id)
        here = eager.wanted(chain.bound_app())
        for step, after in itertools.pairwise(steps):
            step.link(after)
        steps[0].apply_async()
        return eager.outcome(result) if here else result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Celery sends a chain when it is called."""
        return self.apply_async(args, kwargs)
