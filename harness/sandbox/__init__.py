"""Where untrusted commands run: processes, the sandbox environment, protected-path guards."""

from typing import Literal

# `ralph run --sandbox`; environment.py says what each does. `auto` (the default) is bwrap on Linux and
# seatbelt on macOS where they work, else none with a warning on every run.
SANDBOX_KINDS = ("auto", "none", "bwrap", "seatbelt")
SandboxKind = Literal[SANDBOX_KINDS]  # type: ignore[valid-type]  # the one list, above
SANDBOXES = ("bwrap", "seatbelt")  # the kinds that confine a command
