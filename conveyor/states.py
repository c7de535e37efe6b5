"""Task states under Celery's import path (``from conveyor import states`` is this module)."""

from __future__ import annotations

from conveyor.app.states import *  # noqa: F403 - the same names, by design
from conveyor.app.states import __all__ as __all__
