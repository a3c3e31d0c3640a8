"""The lab's import graph has no cycles, counting imports inside functions too.

A cycle through a function-level import (ddp → loop inside the torchrun worker, loop → ddp at the
top) works at run time but ties two modules into one: neither can be read, tested or moved alone.
The graph is read from the source with `ast` (nothing is imported): an edge A → B for every
`import B` / `from B import x` anywhere in A, where `from P import x` points at the submodule P.x
when P/x.py exists and at the package P otherwise. A package's own `__init__` importing its
submodules is an ordinary edge; the implicit import of a parent package is not one.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "lab"


def _module_name(path: Path) -> str:
    parts = path.relative_to(LAB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(LAB.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The lab modules `name` imports, at any depth of its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb level − 1 packages above this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def test_the_graph_reader_sees_function_level_imports() -> None:
    """The reader must find the imports a cycle would hide in (else the test below could not fail)."""
    graph = import_graph()
    assert "lab.train.loop" in graph["lab.cli"]  # imported inside the `train` command only
    assert "lab.train.ddp" in graph["lab.train.loop"]  # `from lab.train import ddp`: the submodule


def test_a_cycle_is_reported() -> None:
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).prepare()


def test_lab_has_no_import_cycle() -> None:
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle in lab/: {' → '.join(e.args[1])}")
