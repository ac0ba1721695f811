"""A census of an mlx tree's cross-package imports (issue 19's before/after table).

    python3 tests/support/import_census.py <tree> [-v]

Counts every import of one top-level package by another (AST, imports inside functions
included), the share inside functions, the edges issue 19 forbids, and the pairs of packages
that import each other. ``tests/unit/test_layering.py`` is the rule; this only reports.
"""

from __future__ import annotations

import ast
import collections
import sys
from pathlib import Path

FORBIDDEN = {
    "gateway": {"engine", "providers", "controller"},
    "state": {"engine", "providers"},
    "inference": {"engine", "providers"},
    "dataplane": {"engine", "providers"},
    "analysis": {"engine", "providers"},
    "common": {"engine", "providers"},
    "controller": {"engine"},
}


def _inside_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    parent = parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
            return True
        parent = parents.get(parent)
    return False


def census(root: Path) -> tuple[set[str], collections.Counter[tuple[str, str]], int, int]:
    skip = {"tests", "bench", "examples"}
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()} - skip
    edges: collections.Counter[tuple[str, str]] = collections.Counter()
    total = lazy = 0
    for package in sorted(packages):
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in packages and top != package:
                        total += 1
                        lazy += _inside_function(node, parents)
                        edges[(package, top)] += 1
    return packages, edges, total, lazy


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    packages, edges, total, lazy = census(root)
    print(
        f"{root}: {len(packages)} packages, {total} cross-package imports, "
        f"{lazy} inside functions ({100 * lazy / max(total, 1):.0f} %)"
    )
    bad = {e: n for e, n in edges.items() if e[1] in FORBIDDEN.get(e[0], set())}
    shown = ", ".join(f"{a}→{b} x{n}" for (a, b), n in sorted(bad.items()))
    print("forbidden edges (issue 19):", shown or "none")
    pairs = sorted({tuple(sorted(e)) for e in edges if (e[1], e[0]) in edges})
    print("packages importing each other:", ", ".join(f"{a}↔{b}" for a, b in pairs) or "none")
    if "-v" in argv:
        for (a, b), n in sorted(edges.items()):
            print(f"  {a:>11} → {b:<11} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
