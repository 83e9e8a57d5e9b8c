"""The import graph of the safecall package: cycles, and the longest chain of imports (the house's floors).

python scripts/layers.py [PACKAGE_DIR]      # default: safecall/ beside this script's folder
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports (top level or in functions; migrations and __main__ left out)."""
    files = {
        module_name(p, package): p
        for p in package.rglob("*.py")
        if "migrations" not in p.parts and p.name != "__main__.py"
    }
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from package import submodule` imports the submodule; `from module import name`, the module
                submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in files]
                names = submodules if len(submodules) == len(node.names) else [node.module] + submodules
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            found.update(n for n in names if n in files and n != name)
        graph[name] = found
    # A package's __init__ that only re-exports is not a floor of its own: keep the edges, they are real imports.
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor: 1 + the highest floor it imports (0 for a module that imports none); cycles counted once."""

    @cache
    def floor(v: str, seen: frozenset = frozenset()) -> int:
        below = [floor(w, seen | {v}) for w in graph[v] if w not in seen and w != v]
        return 1 + max(below) if below else 0

    return {v: floor(v) for v in graph}


def main(argv: list[str]) -> None:
    package = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "safecall"
    graph = import_graph(package)
    levels = floors(graph)
    print(
        f"modules: {len(graph)}; import cycles: {len(cycles(graph))}; floors (longest chain of imports): "
        f"{max(levels.values()) + 1}"
    )
    for group in cycles(graph):
        print("cycle:", " -> ".join(group))
    for level in range(max(levels.values()) + 1):
        print(
            f"{level:2d}: "
            + ", ".join(sorted(v.removeprefix("safecall.") or "safecall" for v, at in levels.items() if at == level))
        )


if __name__ == "__main__":
    main(sys.argv[1:])
