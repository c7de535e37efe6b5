"""Routing: which queue a task goes to.

Order: the `queue=` call option, then `task_routes` (a dict of name or glob pattern to
options, a callable ``(name, args, kwargs, options) -> dict | None``, or a list of these),
then the task's own `queue`, then `task_default_queue`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any

Route = Mapping[str, Any] | Callable[..., Any]


def _match(route: Route, name: str, args: Any, kwargs: Any) -> dict[str, Any] | None:
    if callable(route):
        found = route(name, args, kwargs, {})  # Celery's router signature; no options here
        return {"queue": found} if isinstance(found, str) else found
    if name in route:
        target = route[name]
    else:
        target = next(
            (value for pattern, value in route.items() if fnmatchcase(name, pattern)), None
        )
    return {"queue": target} if isinstance(target, str) else target


def route(
    routes: Route | list[Route] | tuple[Route, ...] | None,
    name: str,
    args: Any = (),
    kwargs: Any = None,
) -> dict[str, Any]:
    """The routing options (e.g. ``{"queue": "images"}``) for task `name`, or {}."""
    if not routes:
        return {}
    for entry in routes if isinstance(routes, (list, tuple)) else [routes]:
        found = _match(entry, name, args, kwargs or {})
        if found:
            return dict(found)
    return {}
