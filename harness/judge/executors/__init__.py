"""Where a `run` check's command runs, and the records of checks that run as jobs.

`local` (the default) is what harness/judge/checks.py does: the command runs here, in ralph's own
process group, inside the candidate tree's checkout (checktree.py). `ray` submits one job per
seed to a Ray cluster through Ray's Job Submission API (ray.py); the loop does not wait for them
(harness/judge/jobs.py). The cluster is configured by the user, never by the plan: `RAY_ADDRESS`, else
`[tool.ralph.executors.ray]` in the committed pyproject.toml (docs/cluster.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.judge.checks import Evidence, Record

JobState = Literal["SUBMITTING", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]
TERMINAL: frozenset[str] = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


class RaySettings(BaseModel):
    """`[tool.ralph.executors.ray]`."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(None, description="The cluster's dashboard / Job API address, e.g. "
                                "http://ray-head:8265; RAY_ADDRESS wins when set")
    runtime_env: dict[str, Any] = Field(default_factory=dict, description="Merged into every job's runtime_env "
                                        "(pip, conda, env_vars, excludes, ...); working_dir is always ralph's")
    max_return_mb: float = Field(16, gt=0, description="Most a job may send back (metric files, artifacts)")
    poll_s: float = Field(2.0, gt=0, description="Seconds between status polls while waiting")


class ExecutorSettings(BaseModel):
    """`[tool.ralph.executors]`."""

    model_config = ConfigDict(extra="forbid")

    ray: RaySettings = Field(default_factory=RaySettings)


class JobRecord(Record):
    """One submitted job (one seed of one check), as the ledger keeps it."""

    id: str = Field(description="the Ray submission id, chosen by ralph before submitting")
    feature: str
    check: str
    seed: int | None = None
    attempt: int
    state: JobState = "SUBMITTING"
    entrypoint: str
    nonce: str = Field(description="marks this job's result block in its log")
    gpus: float = 0.0
    cpus: float = 1.0
    memory_gb: float | None = None
    timeout_s: float
    submitted_at: float = Field(description="epoch seconds")
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    message: str = ""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def elapsed_s(self, now: float) -> float:
        start = self.started_at or self.submitted_at
        return max(0.0, (self.ended_at or now) - start)

    @property
    def gpu_hours(self) -> float:
        if self.started_at is None or self.ended_at is None:
            return 0.0
        return self.gpus * (self.ended_at - self.started_at) / 3600


class Pending(Record):
    """A verification whose Ray jobs have not all finished: what collecting it needs later."""

    attempt: int
    base_commit: str | None = Field(description="HEAD when the jobs were submitted")
    tree: str = Field(description="the candidate tree the jobs run")
    changes: dict[str, list[str] | None] = Field(description="path -> [mode, blob] (None: deleted) the attempt "
                                                 "made against base_commit: its part of the working tree")
    baseline: dict = Field(description="the protected paths' snapshot the job tree was built with")
    local_evidence: list[Evidence] = Field(default_factory=list, description="the feature's local run checks")
    outputs: list[str] = Field(default_factory=list, description="files the local checks wrote")
    log_dir: str
    entry_kind: str = "attempt"
    entry_fields: dict[str, str] = Field(default_factory=dict)
    entry_agent: dict[str, Any] = Field(default_factory=dict)
