"""Offline text every CPython ships: English prose (pydoc topics + stdlib docstrings) and stdlib source code.

The two domains are disjoint by package: docstrings are collected from every stdlib module *except*
`CODE_PACKAGES`, whose source files form the code domain used for fine-tuning and forgetting.
"""

from __future__ import annotations

import ast
import random
import sysconfig
from functools import lru_cache
from pathlib import Path

CODE_PACKAGES = ("json", "email", "http", "urllib", "html", "concurrent")
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__", "lib2to3", "turtledemo"}


def stdlib_dir() -> Path:
    """The standard library directory of the running interpreter."""
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files(packages: tuple[str, ...] | None = None) -> list[Path]:
    """Sorted .py files of the stdlib (or only of `packages`), test directories excluded."""
    root = stdlib_dir()
    roots = [root / p for p in packages] if packages else [root]
    files = []
    for r in roots:
        for f in sorted(r.rglob("*.py")):
            rel = f.relative_to(root).parts
            if not _SKIP_DIRS.intersection(rel) and not rel[-1].startswith("test_"):
                files.append(f)
    return files


def _docstrings(source: str) -> list[str]:
    """Module, class and function docstrings of one source file (empty when it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    docs = (ast.get_docstring(n) for n in ast.walk(tree) if isinstance(n, kinds))
    return [d for d in docs if d and len(d) > 20]


@lru_cache(maxsize=1)
def prose_texts() -> tuple[str, ...]:
    """English prose: the pydoc help topics plus the distinct docstrings of stdlib modules outside CODE_PACKAGES."""
    from pydoc_data.topics import topics

    texts = [topics[k] for k in sorted(topics)]
    code_roots = {stdlib_dir() / p for p in CODE_PACKAGES}
    for f in _stdlib_files():
        if not code_roots.intersection(f.parents):
            texts.extend(_docstrings(f.read_text(encoding="utf-8", errors="replace")))
    return tuple(dict.fromkeys(texts))  # repeated docstrings would leak across the train/validation split


@lru_cache(maxsize=1)
def code_texts() -> tuple[str, ...]:
    """Python source: one text per file of the stdlib packages in CODE_PACKAGES."""
    return tuple(f.read_text(encoding="utf-8", errors="replace") for f in _stdlib_files(CODE_PACKAGES))


def split(texts: tuple[str, ...], val_fraction: float = 0.05, seed: int = 0) -> tuple[list[str], list[str]]:
    """Shuffle whole documents with `seed` and hold out `val_fraction` of them (at least one) for validation."""
    order = list(texts)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction))
    return order[n_val:], order[:n_val]


def prose_split() -> tuple[list[str], list[str]]:
    """The old domain as (train, validation): 5 % of prose documents held out, the same split for every run."""
    return split(prose_texts(), 0.05, seed=0)


def code_split() -> tuple[list[str], list[str]]:
    """The new domain as (train, validation): 10 % of source files held out (there are only ~50), fixed."""
    return split(code_texts(), 0.1, seed=0)


def arithmetic_texts(n: int = 200, seed: int = 0) -> list[str]:
    """`n` lines like '17 + 25 = 42' (sums and differences of two-digit numbers): a probe suite."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        op = rng.choice("+-")
        lines.append(f"{a} {op} {b} = {a + b if op == '+' else a - b}")
    return ["\n".join(lines[i:i + 20]) for i in range(0, n, 20)]
