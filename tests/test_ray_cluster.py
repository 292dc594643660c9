"""ghframes on a real Ray cluster started the ordinary way, as the README's cluster section says:
`ray get-auth-token --generate`, `ray start --head` (token authentication on, Ray 2.60's
default on a machine holding a token) and one worker node; then `ghframes crawl` and `ghframes
render` with `--ray-address`, and the same through `ray job submit`. The data equals an embedded
local run's. Every process the test started is stopped by its PID, nothing else."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import free_port, short_tmpdir
from ghframes import sample

RAY = str(Path(sys.executable).with_name("ray"))
GHFRAMES = [sys.executable, "-m", "ghframes"]


def _node_ports() -> list[str]:
    """Ports of a node's agents, free now: Ray's defaults (52365 ...) are one per machine, and
    the embedded Ray of other tests, or the other node here, may hold them."""
    flags = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port")
    flags += ("--runtime-env-agent-port", "--metrics-export-port")
    return [part for flag in flags for part in (flag, str(free_port()))]


def _run(argv: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _submit(dashboard: str, command: list[str], env: dict) -> subprocess.CompletedProcess:
    """`ray job submit` of a ghframes command, once the head's job agent takes jobs: until then
    Ray answers "No available agent to submit job, please try again later" (the agent starts
    after `ray start` returns), which is the one failure retried, within a deadline."""
    argv = [RAY, "job", "submit", "--address", dashboard, "--", *GHFRAMES, *command]
    deadline = time.monotonic() + 120
    while True:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0 or "No available agent" not in done.stderr:
            break
        assert time.monotonic() < deadline, f"the job agent never came up: {done.stderr[-500:]}"
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _ours(marker: str) -> list[psutil.Process]:
    """The processes whose command line names `marker` (our cluster's temp folder), and their
    descendants (Ray's workers rename themselves `ray::...`)."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or ()):
            for p in [proc, *proc.children(recursive=True)]:
                found[p.pid] = p
    return list(found.values())


def _stop(processes: list[psutil.Process]) -> None:
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=15)
    for proc in alive:
        proc.kill()
    psutil.wait_procs(alive, timeout=5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head (1 CPU) and a worker node (1 CPU) on loopback, with token authentication; yields
    (client environment, GCS address, dashboard address)."""
    home = tmp_path_factory.mktemp("home")
    temp = short_tmpdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=temp)
    started: list[psutil.Process] = []
    try:
        _run([RAY, "get-auth-token", "--generate"], env)
        assert (home / ".ray" / "auth_token").is_file()
        port, dashboard = free_port(), free_port()
        head = _run(
            [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port)]
            + ["--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard)]
            + ["--num-cpus", "1", "--temp-dir", temp, "--disable-usage-stats", *_node_ports()],
            env,
        )
        assert "Token authentication is enabled" in head.stdout + head.stderr
        started = _ours(temp)
        # A worker node joins with the token (Ray's own rule for every node of the cluster).
        worker_env = dict(env, RAY_AUTH_MODE="token")
        worker = [RAY, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1"]
        _run([*worker, *_node_ports()], worker_env)
        started = _ours(temp)
        yield env, f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard}"
    finally:
        _stop(started or _ours(temp))


def _shards(data: Path) -> dict[str, bytes]:
    """Every edits and frames shard (not the manifests, which record times) by relative path."""
    return {
        str(p.relative_to(data)): p.read_bytes()
        for stage in ("edits", "frames")
        for p in (data / stage).rglob("*.parquet")
        if not p.name.startswith("_")
    }


def test_crawl_and_render_on_a_cluster_equal_a_local_run(cluster, tmp_path):
    env, address, dashboard = cluster
    repo = tmp_path / "sample-repo"
    sample.build(str(repo))
    local, remote, job = tmp_path / "local", tmp_path / "remote", tmp_path / "job"
    # The reference: an embedded local Ray of its own (its own RAY_TMPDIR).
    embedded = dict(env, RAY_TMPDIR=short_tmpdir())
    _run([*GHFRAMES, "crawl", str(repo), "--out", str(local), "--num-cpus", "2"], embedded)
    _run([*GHFRAMES, "render", str(local), "--num-cpus", "2"], embedded)

    # The client sets nothing: ghframes finds the token and authenticates.
    for command in (["crawl", str(repo), "--out", str(remote)], ["render", str(remote)]):
        done = _run([*GHFRAMES, *command, "--ray-address", address], env)
        assert "InvalidAuthToken" not in done.stderr and "Traceback" not in done.stderr
    assert _shards(remote) == _shards(local) and _shards(local)

    # As a Ray job: the jobs CLI (ray[default], ghframes[cluster]) takes the token the same way.
    jobs_env = dict(env, RAY_AUTH_MODE="token")
    for command in (["crawl", str(repo), "--out", str(job)], ["render", str(job)]):
        done = _submit(dashboard, command, jobs_env)
        assert "succeeded" in done.stdout + done.stderr and "\r" not in done.stdout
    assert _shards(job) == _shards(local)
    again = _submit(dashboard, ["render", str(job)], jobs_env)
    assert "up to date: 1 repository, 1 session" in again.stdout
