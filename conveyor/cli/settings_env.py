"""Settings from the command line, handed to every process that loads the app.

They are written as JSON to the environment (conveyor.app.loader.CLI_SETTINGS_ENV), which
`load_app` reads: the worker's siblings and process-pool children inherit it, so a
``-b URL`` or ``--time-limit`` holds in all of them.
"""

from __future__ import annotations

import json
import os
from typing import Any

from conveyor.app.loader import CLI_SETTINGS_ENV


def add(**settings: Any) -> None:
    """Merge `settings` (None values skipped) into the command line's settings."""
    given = {name: value for name, value in settings.items() if value is not None}
    if not given:
        return
    current = json.loads(os.environ.get(CLI_SETTINGS_ENV) or "{}")
    current.update(given)
    os.environ[CLI_SETTINGS_ENV] = json.dumps(current)
