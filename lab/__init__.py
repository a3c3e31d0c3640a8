"""lab: seq-JEPA variants and LLM probes that the ralph harness verifies."""

__version__ = "0.1.0"
