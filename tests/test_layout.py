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
    tree = ast.parse((ROOT / "ensemble" / "decode" / "engine.py").read_text())
    step = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "step")
    statements = sum(isinstance(n, ast.stmt) for n in ast.walk(step)) - 1
    assert statements <= 50
    assert "method ==" not in ast.unparse(step)


@pytest.mark.parametrize("module", ["ensemble", "ensemble.decode.events", "ensemble.config", "ensemble.decode.resync",
                                    "ensemble.decode.textstream", "ensemble.presets", "ensemble.errors", "ui",
                                    "ui.render", "ui.links", "ui.store", "ui.export", "ui.picker", "ui.state",
                                    "ui.handlers", "ui.layout"])
def test_boundary_modules_import_without_torch(module):
    code = f"import sys; sys.modules['torch'] = sys.modules['transformers'] = None; import {module}"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_globals_or_utils():
    assert not list((ROOT / "ensemble").rglob("utils.py")) and not list((ROOT / "ui").rglob("utils.py"))
    for path in SOURCES:
        assert "global " not in path.read_text(), path


def imports_of(path: Path) -> set[str]:
    """Every ensemble module `path` imports, at the top or inside a function, as dotted names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    else:
        package = package.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found |= {name} | {f"{name}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {n for n in found if n.startswith("ensemble.")}


def module_graph() -> dict[str, set[str]]:
    paths = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (ROOT / "ensemble").rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in paths and m != name} for name, path in paths.items()}


def test_no_import_cycles_between_modules():
    graph, state, cycles = module_graph(), {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_the_folders_show_the_flow():
    """decode never reaches the loading stack; align is below decode; loading never imports the pool."""
    graph = module_graph()
    for name, deps in graph.items():
        if name.startswith(("ensemble.decode", "ensemble.align")):
            assert not {d for d in deps if d.startswith(("ensemble.models", "ensemble.tune"))}, name
        if name.startswith("ensemble.align"):
            assert not {d for d in deps if d.startswith("ensemble.decode")}, name
    assert "ensemble.models.pool" not in graph["ensemble.models.loading"]
    assert not {d for d in graph["ensemble.models.hub"] | graph["ensemble.compose.store"] if d.endswith("loading")}
