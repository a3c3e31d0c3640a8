"""The research plan: PRD.json's models and validation, lint, `ralph init` templates."""
