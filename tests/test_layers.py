"""The dependency direction, read from the source (every import, top level or inside a function).

contract  → nothing of the project (pydantic, jsonschema, the standard library)
results   → contract (the results interface both sides read through: Celery's backends)
producers → contract, results
worker    → contract, results (never the client, the task bodies or the operator tools)
tasks     → worker, contract, results
operators → anything
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

PROJECT = {"contract", "results", "producers", "worker", "tasks", "operators", "ops", "tests"}
ALLOWED = {
    "contract": {"contract"},
    "results": {"contract", "results"},
    "producers": {"contract", "results", "producers"},
    "worker": {"contract", "results", "worker"},
    "tasks": {"contract", "results", "worker", "tasks"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """The project's top-level packages `path` imports, each with the line of its import."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {(name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in PROJECT}
    return found


def layering_violations(root: Path) -> list[str]:
    """Each import that goes against the dependency direction, as `path:line imports package`."""
    problems = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            for imported, line in sorted(imported_packages(path)):
                if imported not in allowed:
                    problems.append(f"{path.relative_to(root)}:{line} imports {imported}")
    return problems


def test_each_side_imports_only_what_it_may() -> None:
    assert layering_violations(ROOT) == []


@pytest.mark.parametrize(("package", "source", "imported"), [
    ("producers", "from worker.settings import get_settings\n", "worker"),
    ("producers", "def f() -> None:\n    import operators.demo\n", "operators"),
    ("contract", "from tasks.delivery import deliver\n", "tasks"),
    ("contract", "import producers\n", "producers"),
    ("results", "from worker.keys import Keys\n", "worker"),
    ("worker", "from producers.client import submit\n", "producers"),
])
def test_an_import_against_the_direction_is_caught(tmp_path: Path, package: str, source: str, imported: str) -> None:
    (tmp_path / package).mkdir()
    (tmp_path / package / "bad.py").write_text(source)
    assert layering_violations(tmp_path) == [f"{package}/bad.py:{source.count(chr(10))} imports {imported}"]
