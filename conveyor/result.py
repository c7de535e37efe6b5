"""Result handles under Celery's import path: ``from conveyor.result import AsyncResult``."""

from __future__ import annotations

from conveyor.app.eager import EagerResult
from conveyor.app.result import AsyncResult

__all__ = ["AsyncResult", "EagerResult"]
