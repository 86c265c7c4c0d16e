"""The pure core never imports Qt, torch or transformers (ARCHITECTURE.md: "core without Qt").

Like napari's import-linter contract, but as a test over the source: the CLI, batch jobs and
tests must run without a display, and the frozen app must not drag torch in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QT_ALLOWED = {"backend/gui"}
FORBIDDEN_EVERYWHERE_AT_RUNTIME = ("torch", "transformers")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _backend_files() -> list[Path]:
    return sorted((ROOT / "backend").rglob("*.py"))


@pytest.mark.parametrize("path", _backend_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_qt_and_runtime_no_torch(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    names = _imports(path)
    if not any(rel.startswith(a + "/") for a in QT_ALLOWED):
        assert "PySide6" not in names, f"{rel} imports Qt; only backend/gui may"
    bad = names.intersection(FORBIDDEN_EVERYWHERE_AT_RUNTIME)
    assert not bad, f"{rel} imports {bad}; torch/transformers are build-time tools"


def test_main_does_not_import_qt_at_module_level() -> None:
    tree = ast.parse((ROOT / "main.py").read_text(encoding="utf-8"))
    top = {n.names[0].name.split(".")[0] for n in tree.body if isinstance(n, ast.Import)}
    top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    assert "PySide6" not in top
