"""`LabError`: the base of every error the user can fix — a config key, a missing dataset, a run directory
in the wrong state, a results file without a key, a model folder that is not a model.

Its message says what was wrong and how to fix it. Every `lab` command turns a LabError into one red
line and exit code 2 (`except LabError` in lab.cli, `_friendly` in lab.llm.cli); anything else is a bug
and keeps its traceback. Each subclass also keeps the built-in base it had (ValueError, FileNotFoundError,
…), so code that caught those still does. This module imports nothing.
"""

from __future__ import annotations


class LabError(Exception):
    """Bad input or state; the message says what was wrong and how to fix it."""
