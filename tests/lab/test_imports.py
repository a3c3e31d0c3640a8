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
import inspect
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


def test_import_lab_losses_coding_rate_gives_the_module() -> None:
    """`lab.losses` re-exported the function `coding_rate` (and `objective`), which replaced the
    modules of the same names as the package's attributes."""
    import lab.losses.coding_rate as rate_module
    import lab.losses.objective as objective_module

    assert inspect.ismodule(rate_module) and inspect.ismodule(objective_module)


def test_no_package_binds_a_name_of_one_of_its_submodules_to_something_else() -> None:
    """The same trap anywhere in lab/: a package `__init__` importing `name` from elsewhere (or defining it)
    where `package/name.py` exists."""
    modules = _modules()
    shadowed = []
    for package, path in modules.items():
        if path.name != "__init__.py":
            continue
        submodules = {m.rpartition(".")[2] for m in modules if m.rpartition(".")[0] == package}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module != package:
                bound = {a.asname or a.name for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                bound = {node.name}
            else:
                continue
            shadowed += [f"{package}.{name}" for name in bound & submodules]
    assert not shadowed, f"submodules hidden behind another object of the same name: {shadowed}"
