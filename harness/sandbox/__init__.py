"""Where untrusted commands run: processes, the sandbox environment, protected-path guards."""

from typing import Literal

SANDBOX_KINDS = ("none", "bwrap")  # `ralph run --sandbox`; environment.py says what each does
SandboxKind = Literal[SANDBOX_KINDS]  # type: ignore[valid-type]  # the one list, above
