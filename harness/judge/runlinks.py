"""Links from a verdict to the W&B runs behind it, read from the result files its metric gates read.

The contract (what `lab` writes, and what any project's runs can write to be linked): a results
JSON names its W&B run with a key ending in `wandb_id`, and optionally `wandb_url`, `wandb_project`
and `wandb_dir` under the same prefix, flat or nested — `provenance.wandb_id` (the lab's),
`wandb_id`, or `{"wandb": {"id": …, "url": …}}`. Online, `wandb_url` is the run's page. Offline
(WANDB_MODE=offline) there is no URL: `wandb_dir` is the local folder holding the run's records
(the lab writes the `wandb/` folder of its run directory; a `offline-run-<time>-<id>` folder works
too), which `wandb sync` uploads. It is recorded relative to the repository when the folder is
there (a check that ran in ralph's temporary checkout wrote the checkout's absolute path, and the
folder came back into the repository).

The gate reads the links when it reads its figure (checks.run_metric_check), so they are recorded
with the evidence and shown by progress.txt, `ralph status --write` (docs/STATUS.md) and
`ralph report`.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from harness.books.records import WandbRun

FIELDS = ("id", "url", "project", "dir")


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested JSON objects as one level, the path joined by `_` (`{"wandb": {"id": 1}}` → `wandb_id`)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out |= _flat(value, f"{prefix}_{key}" if prefix else str(key))
    return out


def repo_relative(path: str, repo: Path) -> str:
    """`path` as a path in `repo` when it, or its tail, is there (ralph's checkout moved it back);
    else unchanged."""
    parts = PurePath(path).parts
    for start in range(len(parts)):
        tail = Path(*parts[start:])
        if not tail.is_absolute() and (repo / tail).exists():
            return tail.as_posix()
    return path


def wandb_runs(data: Any, repo: Path) -> list[WandbRun]:
    """The W&B runs named in one decoded results file (see the module docstring), in file order."""
    flat = {k.replace(".", "_"): v for k, v in _flat(data).items()}
    runs = []
    for key, value in flat.items():
        if not key.endswith("wandb_id") or not isinstance(value, str) or not value:
            continue
        prefix = key[: -len("id")]
        fields = {f: flat.get(prefix + f) for f in FIELDS[1:]}
        fields = {f: v for f, v in fields.items() if isinstance(v, str) and v}
        if "dir" in fields:
            fields["dir"] = repo_relative(fields["dir"], repo)
        runs.append(WandbRun(id=value, **fields))
    return runs


