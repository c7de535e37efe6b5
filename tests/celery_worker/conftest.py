from __future__ import annotations

from tests.app.conftest import app
from tests.worker.conftest import start_worker

__all__ = ["app", "start_worker"]
