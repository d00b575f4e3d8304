"""The dependency rule of ``edge_app/__init__.py``, checked from the source in both directions,
and no import cycle anywhere in the project.

Imports are read with :mod:`ast`, at module level and inside functions alike (a lazy import still
ties two modules together), so the check needs none of the packages installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import edge_app

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("edge_app", "train", "export")

#: What the device package must never import: the clinic device has none of it.
DEVICE_FORBIDDEN = {"tensorflow", "keras", "train", "export"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports; ``from pkg import name`` counts as ``pkg.name`` when that
    is a module of this repository, else as ``pkg``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative imports are not used here; resolve them if they ever are
                base = module_name(path).split(".")
                base = base[: len(base) - node.level + (path.name == "__init__.py")]
                module = ".".join([*base, node.module])
            else:
                module = node.module
            submodules = [f"{module}.{a.name}" for a in node.names if is_project_module(f"{module}.{a.name}")]
            found.update(submodules or [module])
    return found


def is_project_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def project_graph() -> dict[str, set[str]]:
    graph = {}
    for package in PACKAGES:
        for path in sources(package):
            graph[module_name(path)] = {
                m for m in imported_modules(path) if m.split(".")[0] in PACKAGES and is_project_module(m)
            } - {module_name(path)}
    return graph


def test_the_device_package_imports_nothing_from_training():
    for path in sources("edge_app"):
        for name in imported_modules(path):
            assert name.split(".")[0] not in DEVICE_FORBIDDEN, f"{path.relative_to(REPO)} imports {name}"


def test_training_and_export_import_only_the_documented_device_modules():
    allowed = set(edge_app.USED_BY_TRAINING)
    documented = edge_app.__doc__ or ""
    for name in allowed:
        assert f":mod:`{name}`" in documented or name == "edge_app", f"{name} is not in the written rule"
    used = set()
    for package in ("train", "export"):
        for path in sources(package):
            for name in imported_modules(path):
                if name.split(".")[0] == "edge_app":
                    assert name in allowed, f"{path.relative_to(REPO)} imports {name}, not in the rule"
                    used.add(name)
    # The rule is written as it is: every module it names is really used.
    assert used == allowed


def test_no_import_cycle_in_the_project():
    graph = project_graph()
    assert "edge_app.cli" in graph and "edge_app.watch_cli" in graph["edge_app.cli"]
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_graph_sees_imports_inside_functions(tmp_path):
    """The graph reader sees both top-level and in-function imports (the old cli/watch_cli loop)."""
    a = tmp_path / "a.py"
    a.write_text("from edge_app.cli_common import fail\n\ndef f():\n    from edge_app import cli\n")
    assert imported_modules(a) == {"edge_app.cli_common", "edge_app.cli"}
