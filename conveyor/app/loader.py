"""Finding the app named by ``-A module[:attribute]`` (the working directory is importable).

As Celery's find_app: ``-A proj`` looks in `proj` for an app named ``app`` (or
``conveyor``/``celery``), then for its only app, then in the submodules ``proj.conveyor``
and ``proj.celery`` (the layout of a Celery project: ``proj/celery.py``).

Settings given on the command line (``-b``, ``--result-backend``, ``--config``,
``--time-limit``, ...) travel in the environment variable CLI_SETTINGS_ENV as JSON and are
applied to the app here, so every process that loads it (siblings, process-pool
children) sees the same settings as the command line's own.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from types import ModuleType
from typing import Any

from conveyor.app.base import Conveyor
from conveyor.core.errors import ConfigurationError

CLI_SETTINGS_ENV = "CONVEYOR_CLI_SETTINGS"
#: In CLI_SETTINGS_ENV, the key of a config module to load first (``--config``).
CONFIG_MODULE = "config_from_object"
_NAMES = ("app", "conveyor", "celery")
_SUBMODULES = ("conveyor", "celery")


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
    found = getattr(module, attribute, None) if attribute else _find_in(module)
    if not isinstance(found, Conveyor):
        raise ConfigurationError(
            f"no Conveyor app in {path!r}: name it 'app' or use -A {module_name}:attribute"
        )
    apply_cli_settings(found)
    try:
        found.import_task_modules()
    except SyntaxError as exc:
        raise ConfigurationError(
            f"cannot import a task module of {path!r}: {syntax_error_text(exc)}"
        ) from exc
    except ImportError as exc:
        raise ConfigurationError(f"cannot import a task module of {path!r}: {exc}") from exc
    return found


def _in_module(module: ModuleType) -> Conveyor | None:
    for name in _NAMES:
        found = getattr(module, name, None)
        if isinstance(found, Conveyor):
            return found
    apps = [v for v in vars(module).values() if isinstance(v, Conveyor)]
    return apps[0] if len(apps) == 1 else None


def _find_in(module: ModuleType) -> Conveyor | None:
    """The app of `module`, or of its `conveyor`/`celery` submodule (a package's)."""
    found = _in_module(module)
    if found is not None or not hasattr(module, "__path__"):
        return found
    for name in _SUBMODULES:
        try:
            submodule = importlib.import_module(f"{module.__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{module.__name__}.{name}":
                raise ConfigurationError(f"cannot import {exc.name!r}: {exc}") from exc
            continue
        found = _in_module(submodule)
        if found is not None:
            return found
    return None


def apply_cli_settings(app: Conveyor) -> None:
    """Apply the command line's settings (CLI_SETTINGS_ENV), over the app's own."""
    text = os.environ.get(CLI_SETTINGS_ENV)
    if not text:
        return
    settings: dict[str, Any] = json.loads(text)
    config = settings.pop(CONFIG_MODULE, None)
    if config:
        try:
            app.config_from_object(config)
        except ImportError as exc:
            raise ConfigurationError(f"--config {config!r} cannot be imported: {exc}") from exc
    include = settings.pop("include", None)
    if include:
        app.conf.include = [*app.conf.include, *include]
    app.conf.update(settings)
