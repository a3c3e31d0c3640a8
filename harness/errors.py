"""Exit codes of every `ralph` command and the error base class that maps onto them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (documented in docs/prd.md)."""

    OK = 0
    FAILED = 1  # checks failed (`ralph verify`) or approval refused
    USAGE = 2  # usage, validation, lock or repository error
    AWAITING_APPROVAL = 3
    BUDGET_EXHAUSTED = 4
    BLOCKED = 5
    ENTRY_NOT_MET = 6
    JOBS_RUNNING = 7  # `ralph run --no-wait` left checks running as jobs; `ralph run` or `ralph jobs wait` collects
    INTERRUPTED = 130  # Ctrl-C: state saved, `ralph run` resumes


class RalphError(Exception):
    """An error a person can act on; the CLI prints the message (no traceback) and exits."""

    exit_code: ExitCode = ExitCode.USAGE
