"""The tasks behind `xmap`, `xstarmap` and `chunks`, registered on every app.

Each calls the task it is given in this worker process, item after item, and returns the
list of results (as Celery's celery.map and celery.starmap do): one message for many calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.canvas.signature import Signature

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor


def register_builtins(app: Conveyor) -> None:
    @app.task(name="conveyor.map")
    def map_task(task: dict[str, Any], it: list[Any]) -> list[Any]:
        call = Signature.from_dict(task, app)
        return [call(item) for item in it]

    @app.task(name="conveyor.starmap")
    def starmap_task(task: dict[str, Any], it: list[list[Any]]) -> list[Any]:
        call = Signature.from_dict(task, app)
        return [call(*item) for item in it]
