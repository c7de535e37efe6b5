"""Workflows under `task_always_eager`: every step runs here and now, in order.

There is no worker to move a workflow on, so a chain runs its steps one after another,
each with the previous value, and a chord runs its header, then its body. The results
are EagerResults (a group's a GroupResult of them), linked by `parent` as when sent. A step
that fails ends the chain (its errbacks run, as in `task.apply`); the failed step's
result is returned, so `get()` raises its error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.app import eager as app_eager
from conveyor.app import states
from conveyor.canvas.results import GroupResult, ResultSet, earliest

if TYPE_CHECKING:
    from conveyor.canvas.chords import Chord
    from conveyor.canvas.signature import Signature


def is_eager(sig: Signature) -> bool:
    """`task_always_eager`, or inside an eager run's `replace` (app/eager.py)."""
    return app_eager.wanted(sig.bound_app())


def _failed(result: Any) -> Any:
    """The first failed result in `result` (a group's members too), or None."""
    members = result.results if isinstance(result, ResultSet) else [result]
    return next((r for r in members if r.state == states.FAILURE), None)


def run_chain(steps: list[Signature]) -> Any:
    result: Any = None
    for step in steps:
        args = () if result is None else (result.get(propagate=False),)
        previous, result = result, step.apply_async(args)
        earliest(result).parent = previous
        failed = _failed(result)
        if failed is not None:
            return failed
    return result


def run_chord(chord: Chord, options: dict[str, Any]) -> Any:
    header = GroupResult(
        chord.header.options.get("group_id", ""),
        [task.apply_async(**options) for task in chord.header.tasks],
        app=chord.bound_app(),
    )
    failed = _failed(header)
    if failed is not None:
        failed.parent = header
        return failed
    result = chord._body().apply_async((header.get(propagate=False),), **options)
    earliest(result).parent = header
    return result
