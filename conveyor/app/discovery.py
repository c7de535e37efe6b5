"""`app.autodiscover_tasks`: import the tasks module of each package of a project.

A package with no such module is skipped; an error raised inside an existing tasks
module is not hidden (a broken tasks file must not look like a missing one).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable


def discover(packages: Iterable[str] | Callable[[], Iterable[str]], related_name: str) -> list[str]:
    """Import `<package>.<related_name>` for each package; the names imported."""
    names = packages() if callable(packages) else packages
    imported = []
    for package in names:
        module = f"{package}.{related_name}" if related_name else package
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name in (module, package):
                continue
            raise
        imported.append(module)
    return imported
