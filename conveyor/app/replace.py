"""`self.replace(sig)`: a running task hands its place, and its id, to another signature.

The new signature is sent with the running task's id, root and parent, and takes over the
task's callbacks (after a chain's last step) and errbacks; the running task then ends with
Ignore, so nothing is stored for it and whoever waits on its id gets the new signature's
result. In an eager run the signature runs here, eagerly throughout, and its value is
returned (the eager run then calls the callbacks with it). A task called
directly (not through a worker or `apply`) has no id to hand over: that raises TaskError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.app import context, eager
from conveyor.app.exceptions import Ignore, TaskError
from conveyor.canvas.chains import Chain
from conveyor.canvas.signature import Signature, maybe_signature

if TYPE_CHECKING:
    from conveyor.app.task import Task


def replace(task: Task, sig: Any) -> Any:
    """Send `sig` in `task`'s place; see the module docstring."""
    request = task.request
    if request.called_directly or request.id is None:
        raise TaskError(f"{task.name}.replace() needs a running task (a worker or apply())")
    new = maybe_signature(sig, task.app).clone()
    # Sent as from the task's parent: the replaced task must not become its own parent.
    parent = context.Context(id=request.parent_id, root_id=request.root_id)
    options: dict[str, Any] = {
        "task_id": request.id,
        "root_id": request.root_id,
        "parent_id": request.parent_id,
    }
    if request.is_eager:  # run here, as Celery's sig.apply(); apply() runs the callbacks
        with context.running(parent), eager.everything_eager():
            return new.apply_async(**options).get()
    last = new.tasks[-1] if isinstance(new, Chain) and new.tasks else new
    for data in request.callbacks:
        last.link(Signature.from_dict(data, task.app))
    for data in request.errbacks:
        new.link_error(Signature.from_dict(data, task.app))
    with context.running(parent):
        new.apply_async(**options)
    raise Ignore(f"{task.name} was replaced")
