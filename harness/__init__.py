"""ralph: drives a coding agent through a verified research plan (PRD.json)."""

__version__ = "0.1.0"
