"""The `ray` executor: jobs on a Ray cluster through Ray's own Job Submission API.

`RayCluster` wraps `ray.job_submission.JobSubmissionClient` (submit with a submission id ralph
chose, status, logs, stop); `job_tree` builds the working_dir Ray uploads (the candidate tree,
never the live one); `read_results` takes a job's returned files out of its log (job_entry.py
says why the log) and writes those it may into the repository.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import shutil
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from harness.books.git.trees import export_tree
from harness.books.records import JobRecord
from harness.errors import RalphError
from harness.plan.patterns import matching_pattern
from harness.sandbox import guards
from harness.secrets import SECRET_NAMES, SECRET_PATTERNS
from harness.settings import RaySettings

ENTRY_DIR = ".ralph-job"
SUBMIT_RETRY_S = 30.0  # a head that has just started answers "No available agent" for a few seconds
INSTALL_HINT = "install the cluster extra: pip install -c constraints/cpu.txt -e \".[cluster]\" (or `make setup`)"


class ClusterError(RalphError):
    """The cluster cannot be used (not configured, not reachable, Ray not installed)."""


def cluster_address(settings: RaySettings) -> str:
    """RAY_ADDRESS (Ray's own convention) wins over `[tool.ralph.executors.ray] address`."""
    address = os.environ.get("RAY_ADDRESS") or settings.address
    if not address:
        raise ClusterError("a check runs on Ray (\"executor\": \"ray\") but no cluster is configured: set RAY_ADDRESS "
                           "or `address` under [tool.ralph.executors.ray] in pyproject.toml (docs/cluster.md)")
    return address


def job_tree(repo: Path, tree: str, baseline: guards.Snapshot, dest: Path) -> Path:
    """The job's working_dir: `tree` (the candidate) checked out into `dest` with the protected
    paths as `baseline` saw them, plus the entry script. Returns `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    export_tree(repo, tree, dest)
    guards.put_back(dest, baseline)
    (dest / ENTRY_DIR).mkdir(exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("job_entry.py"), dest / ENTRY_DIR / "entry.py")
    return dest


def entrypoint(command: str, *, timeout_s: float, returns: Sequence[str], nonce: str, allow: Iterable[str],
               env: dict[str, str], max_return_bytes: int) -> str:
    """The shell command Ray runs: job_entry.py with this job's spec as one base64 argument."""
    spec = {"command": command, "timeout_s": timeout_s, "returns": list(returns), "nonce": nonce,
            "allow": sorted(allow), "env": env, "secret_names": sorted(SECRET_NAMES),
            "secret_patterns": list(SECRET_PATTERNS), "max_return_bytes": max_return_bytes}
    return f"python {ENTRY_DIR}/entry.py {base64.b64encode(json.dumps(spec).encode()).decode()}"


@dataclass
class JobInfo:
    """What the cluster says about one job now."""

    state: str
    exit_code: int | None
    started_at: float | None
    ended_at: float | None
    message: str


class RayCluster:
    """One cluster, one client. Every call that reaches the cluster raises `ClusterError` on failure."""

    def __init__(self, settings: RaySettings):
        self.settings = settings
        self.address = cluster_address(settings)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError:
                raise ClusterError(f"Ray is not installed here; {INSTALL_HINT}") from None
            # Ray's SDK logs every upload step at INFO on ralph's stderr; what matters is in ralph's own output
            for name in ("ray", "ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging"):
                logging.getLogger(name).setLevel(logging.WARNING)
            try:
                self._client = JobSubmissionClient(self.address)
            except Exception as e:  # ConnectionError, version mismatch: Ray raises several kinds
                raise ClusterError(f"cannot reach the Ray cluster at {self.address}: {e}") from None
        return self._client

    def submit(self, job: JobRecord, working_dir: Path) -> None:
        """Submit under `job.id`; a submission id the cluster already knows is not submitted again."""
        runtime_env = {**self.settings.runtime_env, "working_dir": str(working_dir)}
        kwargs: dict[str, Any] = dict(entrypoint=job.entrypoint, submission_id=job.id, runtime_env=runtime_env,
                                      entrypoint_num_cpus=job.cpus, entrypoint_num_gpus=job.gpus,
                                      metadata={"ralph_feature": job.feature, "ralph_check": job.check,
                                                "ralph_seed": str(job.seed), "ralph_attempt": str(job.attempt)})
        if job.memory_gb:
            kwargs["entrypoint_memory"] = int(job.memory_gb * 2**30)
        deadline = time.monotonic() + SUBMIT_RETRY_S
        while True:
            if self.info(job.id) is not None:
                return  # submitted before (ralph died before it could write that down)
            try:
                self.client.submit_job(**kwargs)
                return
            except ClusterError:
                raise
            except Exception as e:
                if "No available agent" not in str(e) or time.monotonic() > deadline:
                    raise ClusterError(f"Ray refused job {job.id}: {e}") from None
                time.sleep(1.0)

    def info(self, job_id: str) -> JobInfo | None:
        try:
            info = self.client.get_job_info(job_id)
        except ClusterError:
            raise
        except Exception as e:
            if "does not exist" in str(e) or "404" in str(e):
                return None
            raise ClusterError(f"cannot ask the Ray cluster at {self.address} about job {job_id}: {e}") from None
        ms = lambda t: None if not t else t / 1000  # noqa: E731
        return JobInfo(str(info.status.value), info.driver_exit_code, ms(info.start_time), ms(info.end_time),
                       info.message or "")

    def logs(self, job_id: str) -> str:
        try:
            return self.client.get_job_logs(job_id)
        except ClusterError:
            raise
        except Exception as e:
            raise ClusterError(f"cannot read the log of job {job_id}: {e}") from None

    def stop(self, job_id: str) -> bool:
        try:
            return bool(self.client.stop_job(job_id))
        except ClusterError:
            raise
        except Exception as e:
            raise ClusterError(f"cannot stop job {job_id}: {e}") from None


# ---------------------------------------------------------------- what comes back


class ResultProblem(Exception):
    """The job's log holds no usable result block."""


def result_block(log: str, nonce: str) -> bytes | None:
    """The tar.gz the job printed (None when it returned nothing); raises `ResultProblem` when it
    reported an error or the block is cut off."""
    error = f"RALPH-RESULT-ERROR {nonce} "
    begin, end = f"RALPH-RESULT-BEGIN {nonce} ", f"RALPH-RESULT-END {nonce}"
    lines = log.splitlines()
    for line in lines:
        if line.startswith(error):
            raise ResultProblem(line[len(error):])
    starts = [i for i, line in enumerate(lines) if line.startswith(begin)]
    if not starts:
        return None
    body = []
    for line in lines[starts[-1] + 1:]:
        if line == end:
            return base64.b64decode("".join(body))
        body.append(line)
    raise ResultProblem("the result block in the job log is cut off")


def timed_out(log: str, nonce: str) -> bool:
    return any(line.startswith(f"RALPH-TIMEOUT {nonce} ") for line in log.splitlines())


def strip_results(log: str, nonce: str) -> str:
    """The log without the base64 block (what people read, and the evidence's output tail)."""
    out, inside = [], False
    for line in log.splitlines(keepends=True):
        if line.startswith(f"RALPH-RESULT-BEGIN {nonce} "):
            inside = True
            out.append(f"[ralph: {line.split()[-1]} returned file(s) read back]\n")
        elif inside and line.rstrip("\n") == f"RALPH-RESULT-END {nonce}":
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out)


def apply_results(data: bytes, repo: Path, returns: Sequence[str], protected: Sequence[str]) -> list[str]:
    """Write the returned files into `repo`: only regular files whose normalised relative path one of
    `returns` covers and no protected (or .git / .ralph) glob does. Returns the paths written."""
    written = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            rel = PurePosixPath(member.name)
            if (not member.isfile() or rel.is_absolute() or ".." in rel.parts or not rel.parts
                    or not matching_pattern(str(rel), returns)
                    or matching_pattern(str(rel), (*protected, *guards.ALWAYS_PROTECTED))):
                continue
            dst = repo / rel
            if dst.is_symlink() or dst.is_dir() or not dst.parent.resolve().is_relative_to(repo.resolve()):
                continue  # never write through a link, never replace a directory
            dst.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            dst.write_bytes(source.read())
            written.append(str(rel))
    return written
