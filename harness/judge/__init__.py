"""Verdicts: checks run on the candidate tree, gates, jobs, and recording the outcome."""
