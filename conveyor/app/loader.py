"""Finding the app named by ``-A module[:attribute]`` (the working directory is importable)."""

from __future__ import annotations

import importlib
import os
import sys

from conveyor.app.base import Conveyor
from conveyor.core.errors import ConfigurationError


def syntax_error_text(exc: SyntaxError) -> str:
    """Where and what, in one line: the CLI shows this instead of a traceback."""
    return f"SyntaxError in {exc.filename}, line {exc.lineno}: {exc.msg}"


def load_app(path: str) -> Conveyor:
    """Import `module` and return `attribute`, or the module's `app`, or its only Conveyor."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise ConfigurationError(
            f"cannot import app module {module_name!r}: {syntax_error_text(exc)}"
        ) from exc
    except ImportError as exc:
        raise ConfigurationError(f"cannot import app module {module_name!r}: {exc}") from exc
    if attribute:
        found = getattr(module, attribute, None)
    else:
        found = getattr(module, "app", None)
        if not isinstance(found, Conveyor):
            apps = [v for v in vars(module).values() if isinstance(v, Conveyor)]
            found = apps[0] if len(apps) == 1 else None
    if not isinstance(found, Conveyor):
        raise ConfigurationError(
            f"no Conveyor app in {path!r}: name it 'app' or use -A {module_name}:attribute"
        )
    try:
        found.import_task_modules()
    except SyntaxError as exc:
        raise ConfigurationError(
            f"cannot import a task module of {path!r}: {syntax_error_text(exc)}"
        ) from exc
    except ImportError as exc:
        raise ConfigurationError(f"cannot import a task module of {path!r}: {exc}") from exc
    return found
