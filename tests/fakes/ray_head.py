"""A real single-node Ray head on 127.0.0.1 for the Ray tier and the seeds benchmark.

It runs `ray start --head --block` as our own child, in its own process group, on free ports,
with its own short --temp-dir (Ray's socket paths must stay under 107 bytes), and is stopped by
that group's id: never `ray stop`, which would stop every Ray process on the machine. Ray binds
some ports on all interfaces; callers run inside a private network namespace (`unshare -n` with
`ip link set lo up`, as `make test-ray` does) so nothing is reachable from outside.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")


def private_network() -> bool:
    """True inside a network namespace whose only interface is loopback (`unshare -n`)."""
    try:  # /proc/net/dev lists the interfaces of this process's own network namespace
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return [line.split(":")[0].strip() for line in lines] == ["lo"]


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _free_range(width: int = 100) -> int:
    """A base port with `width` free ports above it (Ray's worker port range)."""
    for base in range(30000, 60000, width):
        try:
            held = []
            for port in range(base, base + width):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                held.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free port range for Ray workers")


class LocalRayHead:
    """`with LocalRayHead(num_cpus=2) as head:` — `head.address` is the Job API's http://127.0.0.1:PORT.

    `num_gpus` declares logical GPUs (Ray schedules and accounts for them; no device is needed)."""

    def __init__(self, num_cpus: int = 2, num_gpus: int = 0, env: dict[str, str] | None = None,
                 start_timeout_s: float = 90):
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self.env = env or {}
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.temp_dir = ""
        self.address = ""

    def __enter__(self) -> LocalRayHead:
        self.temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")
        gcs, dashboard, agent_http, agent_grpc, client, metrics, rt_env = _free_ports(7)
        workers = _free_range()
        cmd = [str(RAY), "start", "--head", "--block", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
               f"--port={gcs}", f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={agent_http}",
               f"--dashboard-agent-grpc-port={agent_grpc}", f"--ray-client-server-port={client}",
               f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={rt_env}",
               f"--min-worker-port={workers}", f"--max-worker-port={workers + 99}",
               f"--num-cpus={self.num_cpus}", f"--num-gpus={self.num_gpus}", "--disable-usage-stats", f"--temp-dir={self.temp_dir}"]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **self.env}
        env.pop("RAY_ADDRESS", None)
        self.log = open(Path(self.temp_dir) / "ray-start.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.address = f"http://127.0.0.1:{dashboard}"
        self._await_ready()
        return self

    def _await_ready(self) -> None:
        from ray.job_submission import JobSubmissionClient

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                JobSubmissionClient(self.address).list_jobs()
                return
            except Exception:
                time.sleep(0.5)
        log = (Path(self.temp_dir) / "ray-start.log").read_text(errors="replace")[-3000:]
        self.__exit__()
        raise RuntimeError(f"the Ray head did not come up at {self.address}:\n{log}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            for sig, wait in ((signal.SIGINT, 8), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            self._kill_leftovers()
            self.proc = None
            self.log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _kill_leftovers(self) -> None:
        """Ray's own daemons that left our process group: found by our temp dir in their command line."""
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = (Path("/proc") / pid / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if self.temp_dir and self.temp_dir in cmdline:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
