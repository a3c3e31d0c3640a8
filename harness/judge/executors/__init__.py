"""Where a `run` check's command runs.

`local` (the default) is what harness/judge/checks.py does: the command runs here, in ralph's own
process group, inside the candidate tree's checkout (checktree.py). `ray` submits one job per
seed to a Ray cluster through Ray's Job Submission API (ray.py); the loop does not wait for them
(harness/judge/jobs.py). The cluster is configured by the user, never by the plan: `RAY_ADDRESS`, else
`[tool.ralph.executors.ray]` in the committed pyproject.toml (docs/cluster.md; harness/settings.py).
The records of jobs are `harness.books.records.JobRecord` and `Pending`.
"""

from __future__ import annotations
