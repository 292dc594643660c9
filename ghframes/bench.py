"""`make bench`: throughput of each stage on this machine, printed as a table and written as JSON.

Each benchmark is a function returning `{"name", "value", "unit"}` rows; `BENCHMARKS` maps a
stage to its function, so `python -m ghframes.bench --only crawl` runs one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import pygit2


def bench_crawl(num_commits: int = 3000) -> list[dict]:
    """Commits per second mined into edit shards from a packed local repository, on one core."""
    from ghframes.pipelines.crawl import CrawlOptions, mine_repository
    from ghframes.sample import build_synthetic
    from ghframes.sources import parse_source

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


def _optional(module: str, func: str) -> Callable[[], list[dict]]:
    """A benchmark defined by a later stage's module, run only where that stage exists."""

    def run() -> list[dict]:
        import importlib

        return getattr(importlib.import_module(module), func)()

    return run


BENCHMARKS: dict[str, Callable[[], list[dict]]] = {
    "crawl": bench_crawl,
    "render": _optional("ghframes.render", "bench_render"),
    "viewer": _optional("ghframes.chunks", "bench_viewer"),
    "loader": _optional("ghframes.training.loader", "bench_loader"),
    "training": _optional("ghframes.training.bench", "bench_training"),
}


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ghframes.bench", description=__doc__)
    parser.add_argument("--json", default="bench.json", help="where to write the results")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only these"
    )
    args = parser.parse_args(argv)
    rows: list[dict] = []
    for name in args.only or BENCHMARKS:
        print(f"running {name} …", file=sys.stderr, flush=True)
        rows += BENCHMARKS[name]()
    width = max(len(r["name"]) for r in rows)
    print(f"# ghframes bench on {machine()}")
    print(f"{'benchmark':<{width}}  {'value':>14}  unit")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['value']:>14,}  {r['unit']}")
    with open(args.json, "w") as out:
        json.dump(rows, out, indent=1)
        out.write("\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
