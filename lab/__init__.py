"""lab: seq-JEPA variants and LLM probes that the ralph harness verifies."""

import os

# Idle OpenMP threads spin by default. On a shared 2-core machine that made a LoRA step 20x slower
# (3-7 s instead of 0.15-0.3 s, measured; docs/llm.md). It must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
