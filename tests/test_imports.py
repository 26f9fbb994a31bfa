"""Imports run one way: dagster_project -> stages -> shared modules, with no cycle.

Read from the source (every ``import`` statement, those inside functions too), so a lazy
import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from vprim.assets.settings import PROJECT_ROOT

#: the pipeline's stages in data order: a stage may import the ones before it, never after
STAGES = ("sources", "quality", "lake", "camps", "model")
CODE_FOLDERS = ("assets", "dagster_project", "kernels", "resources")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(("vprim", *parts))


def _imports(path: Path) -> set[str]:
    """The vprim modules ``path`` imports (``from x import y`` counts x and x.y)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.startswith("vprim.")}


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (names that are not modules are dropped)."""
    files = [p for folder in CODE_FOLDERS for p in (PROJECT_ROOT / folder).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    packages = {m.rsplit(".", 1)[0] for m in modules} | set(modules)
    return {
        m: {n for n in _imports(p) if n in modules or n in packages} - {m}
        for m, p in modules.items()
    }


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "assets" and parts[2] in STAGES else None


def test_nothing_imports_the_dagster_project_but_itself():
    upward = sorted(
        f"{m} imports {n}"
        for m, deps in import_graph().items()
        if not m.startswith("vprim.dagster_project")
        for n in deps
        if n.startswith("vprim.dagster_project")
    )
    assert not upward, upward


def test_stages_import_only_earlier_stages():
    graph = import_graph()
    backwards = sorted(
        f"{m} imports {n}"
        for m, deps in graph.items()
        if _stage(m)
        for n in deps
        if _stage(n) and STAGES.index(_stage(n)) > STAGES.index(_stage(m))
    )
    assert not backwards, backwards


def test_shared_modules_import_no_stage():
    shared = [m for m in import_graph() if m.startswith("vprim.assets.") and not _stage(m)]
    shared = [m for m in shared if not m.endswith(".bench")]  # the benchmark driver runs stages
    graph = import_graph()
    into_stages = sorted(f"{m} imports {n}" for m in shared for n in graph[m] if _stage(n))
    assert not into_stages, into_stages


def test_no_import_cycle():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    cycles = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*stack[stack.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


@pytest.mark.parametrize("folder", CODE_FOLDERS)
def test_no_source_file_is_over_800_lines(folder):
    long = {
        str(p.relative_to(PROJECT_ROOT)): n
        for p in (PROJECT_ROOT / folder).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 800
    }
    assert not long, long


def test_the_graph_sees_an_upward_import(tmp_path):
    """The scan is not blind: a lazy ``from vprim.dagster_project...`` inside a function."""
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from vprim.dagster_project.launch import code_location\n")
    assert _imports(path) == {
        "vprim.dagster_project.launch",
        "vprim.dagster_project.launch.code_location",
    }
