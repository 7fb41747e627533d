"""Layers go one way: ``eval`` (prompt sets, tasks, metrics) never imports ``guard`` (the trainer), and no
import cycle joins the top-level packages. Imports are read from the source with ``ast``, including those
inside functions, so a lazy import counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from guard.ratio import VARIANTS
from guard.schedule import SCHEDULES
from jobs.config import METHODS, SAMPLERS

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "eval", "guard", "jobs")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement of a file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def package_imports(package: str) -> dict[str, list[str]]:
    """Other top-level packages of the project that ``package`` imports -> the ``file:line`` of each import."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top in PACKAGES and top != package:
                found.setdefault(top, []).append(f"{path.relative_to(REPO)}:{line}")
    return found


def test_eval_never_imports_guard() -> None:
    offenders = package_imports("eval").get("guard", [])
    assert not offenders, f"eval/ must not import guard/ (the trainer imports eval, not the reverse): {offenders}"


def test_no_import_cycle_between_top_level_packages() -> None:
    graph = {package: set(package_imports(package)) for package in PACKAGES}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        raise AssertionError(f"import cycle between top-level packages: {err.args[1]}; graph: {graph}") from err
    assert order.index("jobs") < order.index("eval") < order.index("guard")


def test_config_names_every_method_and_sampler_the_trainer_implements() -> None:
    assert sorted(METHODS) == sorted(VARIANTS)
    assert sorted(SAMPLERS) == sorted(SCHEDULES)
