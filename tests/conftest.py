"""Suite-wide isolation: every test starts with Ctrl-C delivered as KeyboardInterrupt to the main thread.

Two Ctrl-C tests (`test_ctrl_c_stops_the_command_and_returns_interrupted`,
`test_sigint_mid_attempt_then_resume_without_duplicates`) failed in fresh-clone `make test` runs under
`-n 2` and passed alone: something earlier in the same worker left SIGINT unhandled. The culprit is not
found yet; this guard restores the state a test may rely on and warns, naming the test that changed it.
"""

from __future__ import annotations

import signal
import warnings

import pytest


@pytest.fixture(autouse=True)
def _ctrl_c_is_a_keyboard_interrupt(request: pytest.FixtureRequest):
    yield
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    handler = signal.getsignal(signal.SIGINT)
    if blocked or handler is not signal.default_int_handler:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.default_int_handler)
        warnings.warn(f"{request.node.nodeid} left SIGINT {'blocked' if blocked else f'handled by {handler!r}'}; "
                      "restored", stacklevel=1)
