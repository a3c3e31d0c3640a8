"""`ralph run`: the loop and its attempts, the prompt, preflight, settings, approval, recovery."""
