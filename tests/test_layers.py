"""The import rule: core <- utils <- clients <- transports, backends <- app <- worker, beat, cli.

Every module of conveyor is read (its source, not its run-time behaviour), and every import
it names, anywhere in the file (inside functions and `if TYPE_CHECKING:` blocks too), must
point to its own package or to a lower layer. Packages that share a layer are peers and never
import each other (a backend never imports a transport). A new package must be given a layer
here before any module in it passes: that is the decision this test asks for.
"""

from __future__ import annotations

import ast
from pathlib import Path

import conveyor

ROOT = Path(conveyor.__file__).parent

# Lowest first. A layer is a tuple of peer groups; a group is one package, or several that
# are one unit (canvas is the app's workflow half: app/signature.py re-exports it). "conveyor"
# is the package's own __init__ (the public names).
LAYERS: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("core",),),
    (("utils",), ("signals",)),
    (("clients",),),
    (("transports",), ("backends",)),
    (("app", "canvas"),),
    # conveyor.schedules is Celery's import path for beat's schedules; the root package
    # exports crontab and solar from it, so the root sits above beat.
    (("beat", "schedules"),),
    (("conveyor", "exceptions", "states", "result"),),
    (("monitoring",),),
    (("worker",),),
    (("testing",),),
    (("cli",), ("contrib",)),
)


def _ranks() -> dict[str, tuple[int, int]]:
    """Package -> (layer, group) from LAYERS."""
    return {
        package: (layer, group)
        for layer, groups in enumerate(LAYERS)
        for group, packages in enumerate(groups)
        for package in packages
    }


def package_of(module: str) -> str | None:
    """The layered package a dotted name belongs to: None outside conveyor; "conveyor" for
    the root's own modules and public names (conveyor.Conveyor, conveyor.states) unless
    LAYERS names them."""
    parts = module.split(".")
    if parts[0] != "conveyor":
        return None
    if len(parts) == 1:
        return "conveyor"
    package = parts[1]
    if len(parts) > 2 or package in _ranks() or (ROOT / package).is_dir():
        return package
    return "conveyor"


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in `source`, relative imports resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from conveyor import app` imports conveyor.app, not the root's public names
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Each import in `module`'s `source` that breaks the rule, as a readable line."""
    ranks = _ranks()
    own = package_of(module)
    if own not in ranks:
        return [f"{module}: package {own!r} has no layer; give it one in tests/test_layers.py"]
    problems = []
    for line, name in imported_modules(source, module, is_package):
        target = package_of(name)
        if target is None or target == own:
            continue
        if target not in ranks:
            problems.append(f"{module}:{line} imports {name}, whose package has no layer")
            continue
        (layer, group), (their_layer, their_group) = ranks[own], ranks[target]
        if their_layer < layer or (their_layer == layer and their_group == group):
            continue
        where = "a peer of" if their_layer == layer else "above"
        problems.append(f"{module}:{line} imports {name} ({target}: {where} {own})")
    return problems


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["conveyor", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def test_every_import_points_down_the_layers() -> None:
    problems = [
        problem
        for module, path in _modules()
        for problem in violations(module, path.read_text(), path.name == "__init__.py")
    ]
    assert problems == []


def test_the_rule_catches_a_core_module_importing_a_transport() -> None:
    assert violations("conveyor.core.producer", "from conveyor.transports.redis import X\n") == [
        "conveyor.core.producer:1 imports conveyor.transports.redis.X (transports: above core)"
    ]


def test_the_rule_catches_peers_and_late_imports() -> None:
    source = "def f():\n    import conveyor.transports.sql\n"
    assert violations("conveyor.backends.sql", source) == [
        "conveyor.backends.sql:2 imports conveyor.transports.sql (transports: a peer of backends)"
    ]
    relative = "from ..app import context\n"
    assert len(violations("conveyor.utils.log", relative)) == 1


def test_the_rule_allows_own_package_lower_layers_and_one_group() -> None:
    source = "from conveyor.core import envelope\nfrom . import states\nimport conveyor.canvas.x\n"
    assert violations("conveyor.app.base", source) == []


def test_a_package_without_a_layer_is_reported() -> None:
    assert violations("conveyor.newthing.mod", "") == [
        "conveyor.newthing.mod: package 'newthing' has no layer; "
        "give it one in tests/test_layers.py"
    ]
