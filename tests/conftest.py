"""Shared fixtures: one embedded Ray per test session, scratch directories, real git repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def torch_one_thread():
    """Run a test on one torch thread: small models are fastest so, and timings stay stable."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def short_tmpdir() -> str:
    """A fresh folder for RAY_TMPDIR: Ray's socket paths must stay under ~107 characters."""
    import tempfile

    return tempfile.mkdtemp(prefix="ray-", dir="/tmp")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """One embedded local Ray for the whole test session (it costs ~3 s and ~600 MB to start)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_TMPDIR"] = short_tmpdir()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.org",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.org",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class GitRepo:
    """A real repository driven through the `git` command line, as a person would."""

    def __init__(self, path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "protocol.file.allow", "always")

    def git(self, *args: str) -> str:
        import subprocess

        env = dict(os.environ, **GIT_ENV)
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True
        )
        return done.stdout.decode().strip()

    def write(self, rel: str, content: str | bytes) -> None:
        file = self.path / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(content.encode() if isinstance(content, str) else content)

    def commit(self, message: str, files: dict[str, str | bytes | None] | None = None) -> str:
        """Write each file (None deletes it), stage everything and commit; return the commit id."""
        for rel, content in (files or {}).items():
            self.change(rel, content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def change(self, rel: str, content: str | bytes | None) -> None:
        if content is None:
            (self.path / rel).unlink()
        else:
            self.write(rel, content)


@pytest.fixture
def make_repo(tmp_path):
    """Factory of real git repositories under the test's temporary folder."""

    def make(name: str = "repo") -> GitRepo:
        return GitRepo(tmp_path / name)

    return make


@pytest.fixture(scope="session")
def sample_repo(tmp_path_factory):
    """The embedded sample repository (built once per test session)."""
    from ghframes import sample

    path = tmp_path_factory.mktemp("sample") / "tally"
    sample.build(str(path))
    return path


@pytest.fixture
def github():
    """A scripted GitHub API on loopback (tests/fakegithub.py); each test sets its routes."""
    from fakegithub import serve

    with serve() as fake:
        yield fake


# --- `ghframes crawl` and the edits it writes (test_crawl*.py) -----------------------------------


def crawl(*argv: str, env: dict | None = None) -> int:
    """`ghframes crawl ARGV --no-progress` in this process, with `env` as its whole environment."""
    from ghframes import cli

    return cli.main(["crawl", *argv, "--no-progress"], env=env or {})


def edits_manifest(data: Path) -> dict:
    """DATA/edits/_manifest.json, decoded."""
    import json

    return json.loads((data / "edits" / "_manifest.json").read_text())


def edit_rows(data: Path, key: str | None = None):
    """The edit rows (a pyarrow Table) of every repository of DATA, or of the one named `key`."""
    import pyarrow as pa

    from ghframes.store import schema, shards

    edits = schema.load("edits")
    fs, _ = shards.filesystem(str(data))
    tables = [
        shards.read_table(fs, str(data / "edits" / name), edits)
        for k, entry in edits_manifest(data)["repos"].items()
        if key in (None, k)
        for name in entry["shards"]
    ]
    return pa.concat_tables(tables) if tables else edits.arrow.empty_table()


# --- the streaming loader (test_loader*.py) -------------------------------------------------------


@pytest.fixture(scope="session")
def loader_data(tmp_path_factory, ray_local):
    """DATA rendered by the real pipeline from three histories, sessions of at most 700 frames."""
    from test_render import tiny_repo

    from ghframes.pipelines.render import render_dataset
    from ghframes.realistic import realistic_edit_rows
    from ghframes.render.session import RenderOptions
    from ghframes.sample import write_edits

    root = tmp_path_factory.mktemp("loader") / "data"
    write_edits(
        root,
        {
            "github.com/bench/history": realistic_edit_rows(3, 2),
            "local/tiny": tiny_repo(3),
            "local/t2": tiny_repo(5),
        },
    )
    render_dataset(str(root), RenderOptions(max_frames_per_session=700))
    return str(root)


def batches(ds) -> list[dict]:
    """Every batch of `ds`, its tensors copied (a worker's shared slot is reused once released)."""
    return [{k: v.clone() for k, v in b.items()} for b in ds]


def same(a: list[dict], b: list[dict]) -> None:
    """The two lists of batches are equal, tensor by tensor."""
    import torch

    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for k in x:
            assert torch.equal(x[k], y[k]), k


# --- the simulator and the model acting in it (test_environment.py, test_sample.py) --------------


@pytest.fixture(scope="session")
def sample_sessions(tmp_path_factory, sample_repo, ray_local) -> str:
    """DATA of the sample repository, crawled and rendered through the command line into
    sessions of at most 1,500 frames: four, so that three start past its first commit and the
    trainer has one to hold out."""
    from ghframes import cli

    data = tmp_path_factory.mktemp("sample-sessions") / "data"
    assert cli.main(["crawl", str(sample_repo), "--out", str(data), "--no-progress"]) == 0
    argv = ["render", str(data), "--no-progress", "--max-frames-per-session", "1500"]
    assert cli.main(argv) == 0
    return str(data)
