"""`result_extended`: what a worker stores beside a result so that `AsyncResult.name`,
`args`, `kwargs`, `worker`, `retries` and `queue` can be read back (result_extras.py).

The fields go into the record's `meta`, under the attribute names.
"""

from __future__ import annotations

from typing import Any

from conveyor.app.context import Context


def extended_meta(request: Context) -> dict[str, Any]:
    """The extended fields of the run `request` describes."""
    return {
        "name": request.task,
        "args": list(request.args),
        "kwargs": dict(request.kwargs),
        "worker": request.hostname,
        "retries": request.retries,
        "queue": request.delivery_info.get("queue"),
    }
