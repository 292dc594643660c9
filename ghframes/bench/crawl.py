"""Crawl benchmark: commits per second mined into edit shards from a packed local repository."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

import pygit2

from ghframes.crawl.sources import parse_source
from ghframes.pipelines.crawl import CrawlOptions, mine_repository
from ghframes.sample import build_synthetic


def bench_crawl(num_commits: int = 3000) -> list[dict]:
    """Commits per second mined into edit shards from a packed local repository, on one core."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "history.git")
        build_synthetic(path, num_commits=num_commits)
        subprocess.run(["git", "-C", path, "gc", "-q", "--aggressive"], check=True)
        repo = pygit2.Repository(path)
        head = str(repo.head.target)
        root = str(list(repo.walk(repo.head.target))[-1].id)
        source = parse_source(path)
        start = time.perf_counter()
        entry = mine_repository(
            source, os.path.join(tmp, "data"), head, root, CrawlOptions(tmp), None
        )
        seconds = time.perf_counter() - start
    assert entry["status"] == "ok", entry["error"]
    return [
        {
            "name": "crawl.commits_per_s_per_core",
            "value": round(entry["commits"] / seconds),
            "unit": "commits/s",
        },
        {
            "name": "crawl.edit_rows_per_s_per_core",
            "value": round(entry["changes"] / seconds),
            "unit": "rows/s",
        },
        {
            "name": "crawl.shard_bytes_per_edit_row",
            "value": round(entry["bytes"] / entry["changes"], 1),
            "unit": "B/row",
        },
    ]
