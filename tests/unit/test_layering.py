"""Layers import one way: harnesses <- workers <- orchestrator (DESIGN.md, STYLE.md rule 2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "harnesses": {"workers", "orchestrator"},
    "workers": {"orchestrator"},
}


def imported_packages(source: str) -> set[str]:
    """Top-level package names a module imports, including imports inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_checker_sees_every_import_form() -> None:
    source = "import workers.git\nfrom orchestrator import x\ndef f():\n    import json\n"
    assert imported_packages(source) == {"workers", "orchestrator", "json"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_lower_layer_never_imports_a_higher_one(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found under {package}/"
    violations = [
        f"{path.relative_to(ROOT)} imports {sorted(bad)}"
        for path in files
        if (bad := imported_packages(path.read_text(encoding="utf-8")) & FORBIDDEN[package])
    ]
    assert violations == []
