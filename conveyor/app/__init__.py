"""The task layer: the Conveyor app, tasks, results, states, routing and control."""

from conveyor.app import states
from conveyor.app.base import Conveyor
from conveyor.app.result import AsyncResult
from conveyor.app.signature import Signature
from conveyor.app.task import Task

__all__ = ["AsyncResult", "Conveyor", "Signature", "Task", "states"]
