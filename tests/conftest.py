"""Suite-wide isolation: every test starts with Ctrl-C delivered as KeyboardInterrupt to the main thread.

pytest-xdist's workers (execnet) ignore SIGINT so that Ctrl-C reaches the controller, and a process
started from a worker inherits that: a `ralph run` subprocess then ignores the SIGINT a test sends it,
and an in-process SIGINT is dropped. The Ctrl-C tests passed only when an earlier test in the same worker
happened to install Python's handler, so they failed or passed with the way tests were spread over the
workers (two failed in three fresh-clone `make test -n 2` runs).
"""

from __future__ import annotations

import signal

import pytest


@pytest.fixture(autouse=True)
def _ctrl_c_is_a_keyboard_interrupt() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
