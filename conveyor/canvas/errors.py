"""Errors of the canvas: a workflow refused when it is built."""

from __future__ import annotations

from conveyor.app.exceptions import TaskError


class InvalidWorkflow(TaskError, ValueError):
    """A workflow that cannot run (a cycle, a signature of an unknown shape, an empty
    group where a chord needs a header); raised when the workflow is built, never later
    in a worker. The message names the bad part."""
