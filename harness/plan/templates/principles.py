"""DESIGN-PRINCIPLES.md written by `ralph init`; the loop puts it in every agent prompt."""

PRINCIPLES = """\
# Design principles

These go into every prompt the agent receives. The harness (ralph), not the agent, decides
whether a feature passes: it runs the checks listed in PRD.json itself and records the evidence.

## Evidence, not claims
- A feature is done when its checks pass when ralph runs them, at a commit. Saying it is done changes nothing.
- Never write a number you did not measure. Results come from runs (`results.json`), with the
  seed, config and commit that produced them.
- Do not edit PRD.json, progress.txt, `.ralph/` or protected paths (tests, evaluation code, the
  metric files gates read). ralph restores them and fails the attempt.

## Research hygiene
- One experiment per folder under `experiments/`: `config.yaml`, `README.md` (hypothesis, setup,
  results with their run ids, what we learned), `results.json`.
- Compare against the baseline on the same data, budget and seeds; report mean and spread over
  seeds, and say when a difference is within the noise.
- Prefer a small run that answers the question over a large one that might.
- Negative results are results: write them down.

## Code
- Small modules with one job; pure, documented functions (tensor shapes in docstrings).
- Configs in YAML, validated before training starts; no magic constants in code.
- Tests are fast and check behaviour on inputs with known answers.
- Run outputs and checkpoints (`runs/`, `*.pt`, `wandb/`) never go into git.
- No network beyond what a run needs; never print or commit secrets.
"""

# Harness state and run outputs, then what a Python project's environment and tools leave in the tree (issue 24:
# a .venv the first run listed as 11,329 changed files, which --allow-dirty would have committed).
GITIGNORE_LINES = [".ralph/", "runs/", "wandb/", "checkpoints/", "*.pt", "*.ckpt",
                   ".venv/", "venv/", "__pycache__/", "*.egg-info/", ".ipynb_checkpoints/"]
