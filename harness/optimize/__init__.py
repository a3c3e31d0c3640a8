"""Optimize: a metric search judged by the harness (docs/prd.md, "Optimize")."""
