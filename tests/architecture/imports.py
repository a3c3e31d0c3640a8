"""The import graph of a package, read from its source with `ast` (nothing is imported or run).

The reading is written by hand because the harness imports heavy modules inside functions and a
cycle can hide there: the graph must count every import statement, not only those run at import
time (import-linter needs a contract file and another dependency for what these few lines do).
Cycles and chain lengths come from the standard library's graphlib.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path


def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of `package` under `root`."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name an import statement anywhere in the file names (module-level or not)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from pkg import name`: the submodule pkg.name when there is one, else pkg itself
            yield from (f"{source}.{alias.name}" for alias in node.names)


def graph(root: Path, package: str) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports (the longest known prefix of each name).

    `from harness.judge import jobs` counts as importing `harness.judge.jobs`, not the package."""
    known = modules(root, package)
    edges: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        for name in _imported_names(module, path):
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges[module].add(name)
    return edges


def cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import cycle (its modules in order, the first repeated at the end), or [] when there is none."""
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as e:
        return list(e.args[1])
    return []


def layers(edges: dict[str, set[str]]) -> int:
    """The length of the longest import chain (modules in it), for an acyclic graph."""
    depth: dict[str, int] = {}
    for module in graphlib.TopologicalSorter(edges).static_order():  # what a module imports comes first
        depth[module] = 1 + max((depth[d] for d in edges.get(module, ())), default=0)
    return max(depth.values(), default=0)
