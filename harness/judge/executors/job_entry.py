"""What a Ray job runs: the check's command in the uploaded candidate tree, then its results back.

This file is copied into the job's working_dir as `.ralph-job/entry.py` and run by the cluster's own Python, which has no ralph installed: standard library only.

The job's spec (command, timeout, return globs, nonce, environment rule) is the one argument, as
base64 JSON: the working_dir stays identical across the seeds of a check, so Ray uploads it once.

1. The environment is scrubbed with ralph's own rule (the secret names and patterns come in
   job.json), so a check sees the same kind of environment on the cluster as on this machine.
2. The command runs in its own process group, stopped at `timeout_s` (exit 124) or when Ray
   stops the job (SIGTERM is passed on to the whole group: nothing keeps running on the node).
3. The files it created or changed that match the `returns` globs (the feature's metric files and
   the check's `artifacts`) are printed to the job log as one base64 tar.gz between two lines
   carrying this job's nonce. Why the log: it is the one channel every Ray cluster already gives
   a Job Submission client (the same HTTP endpoint that submits and stops jobs), it outlives the
   driver and ralph itself (the head keeps it with the job record), and it needs no shared
   filesystem, no object-store credentials and no GCS port. The price is base64 (+33%) and a size
   cap (`max_return_bytes`): checkpoints belong in the cluster's own storage, not in the repository.
"""

from __future__ import annotations

import base64
import fnmatch
import glob
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GRACE_S = 5.0


def _secret(name: str, names: list[str], patterns: list[str]) -> bool:
    upper = name.upper()
    return upper in names or any(fnmatch.fnmatchcase(upper, p) for p in patterns)


def _signatures(root: str, patterns: list[str]) -> dict[str, tuple[int, int]]:
    out = {}
    for pattern in patterns:
        for rel in glob.glob(pattern, root_dir=root, recursive=True):
            path = os.path.join(root, rel)
            if os.path.isfile(path) and not os.path.islink(path):
                st = os.stat(path)
                out[os.path.normpath(rel)] = (st.st_size, st.st_mtime_ns)
    return out


def _stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _emit(root: str, paths: list[str], nonce: str, limit: int) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for rel in sorted(paths):
            tar.add(os.path.join(root, rel), arcname=rel, recursive=False)
    data = buffer.getvalue()
    if len(data) > limit:
        print(f"RALPH-RESULT-ERROR {nonce} {len(data)} bytes of results ({', '.join(sorted(paths)[:5])}) exceed "
              f"the {limit} bytes that may come back through the job log", flush=True)
        return
    text = base64.b64encode(data).decode()
    lines = [text[i:i + 76] for i in range(0, len(text), 76)]
    sys.stdout.write("\n".join([f"RALPH-RESULT-BEGIN {nonce} {len(paths)}", *lines, f"RALPH-RESULT-END {nonce}"])
                     + "\n")
    sys.stdout.flush()


def main() -> int:
    spec = json.loads(base64.b64decode(sys.argv[1]))
    root = os.path.dirname(HERE)
    os.chdir(root)
    env = {k: v for k, v in os.environ.items()
           if k in spec["allow"] or not _secret(k, spec["secret_names"], spec["secret_patterns"])}
    env.update(spec["env"])
    before = _signatures(root, spec["returns"])
    started = time.monotonic()
    proc = subprocess.Popen(spec["command"], shell=True, env=env, start_new_session=True)

    def forward(signum: int, _frame: object) -> None:  # Ray stopping the job: stop the command's whole group
        _stop(proc)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, forward)
    try:
        code = proc.wait(timeout=spec["timeout_s"])
    except subprocess.TimeoutExpired:
        _stop(proc)
        print(f"RALPH-TIMEOUT {spec['nonce']} after {spec['timeout_s']:g}s the job's process group was killed",
              flush=True)
        code = 124
    if code < 0:  # killed by a signal: the shell's convention
        code = 128 - code
    after = _signatures(root, spec["returns"])
    _emit(root, [p for p, sig in after.items() if before.get(p) != sig], spec["nonce"], spec["max_return_bytes"])
    print(f"ralph: exit {code} after {time.monotonic() - started:.1f}s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
