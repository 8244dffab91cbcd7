"""The code-size budget and the module boundaries (shared/docs/aesthetics-anchors.md, habits 3, 11, 14)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "ensemble").rglob("*.py")) + sorted((ROOT / "ui").rglob("*.py")) + [ROOT / "app.py"]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_under_300_lines(path):
    assert len(path.read_text().splitlines()) <= 300


def test_decode_step_reads_as_the_pipeline():
    tree = ast.parse((ROOT / "ensemble" / "engine.py").read_text())
    step = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "step")
    statements = sum(isinstance(n, ast.stmt) for n in ast.walk(step)) - 1
    assert statements <= 50
    assert "method ==" not in ast.unparse(step)


@pytest.mark.parametrize("module", ["ensemble.events", "ensemble.config", "ensemble.resync", "ensemble.textstream",
                                    "ensemble.presets", "ensemble.errors", "ui", "ui.render", "ui.links", "ui.store",
                                    "ui.export", "ui.picker", "ui.state", "ui.handlers", "ui.layout"])
def test_boundary_modules_import_without_torch(module):
    code = f"import sys; sys.modules['torch'] = sys.modules['transformers'] = None; import {module}"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_globals_or_utils():
    assert not list((ROOT / "ensemble").rglob("utils.py")) and not list((ROOT / "ui").rglob("utils.py"))
    for path in SOURCES:
        assert "global " not in path.read_text(), path
