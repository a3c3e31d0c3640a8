"""The PRD templates `ralph init` offers (blank, sklearn, seq-jepa) and DESIGN-PRINCIPLES.md; harness/books/init.py writes them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.plan.prd import PRD

# Each name is a module here holding a builder of the same name (dash as underscore), imported on
# use, so the CLI's --help lists the names without loading the PRD models and GitPython.
TEMPLATE_NAMES = ("blank", "sklearn", "seq-jepa")


def template(name: str) -> Callable[..., PRD]:
    """The PRD builder for a template name: `builder(project_name) -> PRD`."""
    module = name.replace("-", "_")
    return getattr(importlib.import_module(f"harness.plan.templates.{module}"), module)  # type: ignore[no-any-return]


