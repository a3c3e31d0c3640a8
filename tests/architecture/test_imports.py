"""The folder tree is the architecture: no import cycles, and each floor imports only the floors below it.

docs/architecture.md draws the same floors; change both together.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.architecture.imports import cycle, graph, layers, modules

ROOT = Path(__file__).resolve().parents[2]

# The harness's floors, lowest first. A module may import its own floor and those its floor lists.
GROUND = "ground"  # errors.py, fileio.py, secrets.py: import nothing of the harness
BELOW: dict[str, set[str]] = {
    GROUND: set(),
    "plan": {GROUND},  # PRD.json's models, path patterns, lint, templates
    "books": {GROUND, "plan"},  # record types, the layout of ralph's paths, ledger, progress.txt, git
    "sandbox": {GROUND, "plan", "books"},  # processes, the sandbox, protected-path guards
    "agents": {GROUND, "plan", "books", "sandbox"},
    "settings": {GROUND, "plan", "books", "sandbox", "agents"},  # settings.py: [tool.ralph], .ralph/config.toml
    "project": {GROUND, "plan", "books", "sandbox"},  # project.py: a repository, its plan and its books
    "judge": {GROUND, "plan", "books", "sandbox", "settings", "project"},  # never the loop, agents or views
    "run": {GROUND, "plan", "books", "sandbox", "agents", "settings", "project", "judge"},
    # beside run: the metric search (`ralph run` on a feature with an `optimize` block); never the loop
    "optimize": {GROUND, "plan", "books", "sandbox", "agents", "settings", "project", "judge"},
    "views": {GROUND, "plan", "books", "sandbox", "agents", "settings", "project", "judge", "run", "optimize"},
    "cli": {GROUND, "plan", "books", "sandbox", "agents", "settings", "project", "judge", "run", "optimize", "views"},
}
TOP_LEVEL_FLOORS = {"harness": GROUND, "harness.errors": GROUND, "harness.fileio": GROUND,
                    "harness.secrets": GROUND, "harness.project": "project", "harness.settings": "settings",
                    "harness.cli": "cli"}


def floor(module: str) -> str:
    """The floor of a harness module: its folder, or its own entry for a top-level module."""
    if module in TOP_LEVEL_FLOORS:
        return TOP_LEVEL_FLOORS[module]
    folder = module.split(".")[1]
    assert folder in BELOW, f"{module} is in no floor: add its folder to BELOW (and to docs/architecture.md)"
    return folder


@pytest.mark.parametrize("package", ["harness", "lab"])
def test_no_import_cycles(package: str) -> None:
    found = cycle(graph(ROOT, package))
    assert not found, f"import cycle in {package}/: {' -> '.join(found)}"


def test_each_floor_imports_only_the_floors_below() -> None:
    upward = [f"{m} ({floor(m)}) imports {d} ({floor(d)})"
              for m, deps in graph(ROOT, "harness").items() for d in sorted(deps)
              if floor(d) != floor(m) and floor(d) not in BELOW[floor(m)]]
    assert not upward, "imports that go up a floor:\n" + "\n".join(upward)


def test_the_top_level_is_a_handful_of_modules() -> None:
    top = [m for m, path in modules(ROOT, "harness").items() if path.parent == ROOT / "harness"]
    assert len(top) <= 8, f"{len(top)} modules at harness/'s top level (at most 8): {sorted(top)}"
    assert set(top) <= set(TOP_LEVEL_FLOORS), f"a top-level module with no floor: {set(top) - set(TOP_LEVEL_FLOORS)}"


def test_the_graph_reader_sees_cycles_and_chains(tmp_path: Path) -> None:
    """The checks above would pass on a reader that found nothing: it must find a planted cycle."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from pkg import c\n")  # a function-level import counts
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("from .sub.b import f\n")  # relative
    edges = graph(tmp_path, "pkg")
    assert edges["pkg.d"] == {"pkg.sub.b"}
    assert set(cycle(edges)) == {"pkg.a", "pkg.c", "pkg.sub.b"}
    (pkg / "c.py").write_text("")
    assert cycle(graph(tmp_path, "pkg")) == [] and layers(graph(tmp_path, "pkg")) == 3
