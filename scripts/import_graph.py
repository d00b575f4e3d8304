"""Print the edge_app package's size and its internal import graph (module -> modules it imports).

Every ``import``/``from ... import`` is counted, at module level or inside a function, because a
lazy import still ties two modules together. Run from the repository root:
``python scripts/import_graph.py [PACKAGE ...]`` (default ``edge_app``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path, package: str) -> set[str]:
    """Modules of ``package`` that the file at ``path`` imports (``package`` itself for
    ``from package import name`` unless ``name`` is a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == package:
                names = [f"{package}.{a.name}" for a in node.names if (ROOT / package / f"{a.name}.py").exists()] or [package]
        else:
            continue
        found.update(n for n in names if n == package or n.startswith(package + "."))
    return found


def graph(package: str) -> dict[str, set[str]]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts)
        name = name[: -len(".__init__")] if name.endswith(".__init__") else name
        out[name] = imports_of(path, package) - {name}
    return out


def main(packages: list[str]) -> None:
    for package in packages:
        g = graph(package)
        files = sorted((ROOT / package).rglob("*.py"))
        lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files)
        print(f"{package}: {len(files)} modules, {lines} lines")
        short = lambda m: m.split(".", 1)[1] if "." in m else m  # noqa: E731
        for module, deps in g.items():
            print(f"  {short(module):<16} -> {', '.join(sorted(short(d) for d in deps)) or '-'}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["edge_app"])
