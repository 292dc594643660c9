"""`make bench`: the throughput of each stage on this machine, as a table and as JSON.

Every benchmark is one small function in this package returning `{"name", "value", "unit"}`
rows; `BENCHMARKS` maps a stage to it, so `python -m ghframes.bench --only crawl` runs one.
The JSON file names the machine and the commit once, then lists the rows. This is the top
layer: it may import the pipelines and the trainer, as the command line does.
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
from collections.abc import Callable

# stage -> "module:function", imported only when that stage runs (torch and Ray load lazily)
BENCHMARKS: dict[str, str] = {
    "crawl": "ghframes.bench.crawl:bench_crawl",
    "render": "ghframes.bench.render:bench_render",
    "realism": "ghframes.bench.realism:bench_realism",
    "verify": "ghframes.bench.verify:bench_verify",
    "viewer": "ghframes.bench.viewer:bench_viewer",
    "loader": "ghframes.bench.loader:bench_loader",
    "training": "ghframes.bench.training:bench_training",
    "scale": "ghframes.bench.scale:bench_scale",
}


def benchmark(stage: str) -> Callable[[], list[dict]]:
    """The benchmark function of `stage` (one of `BENCHMARKS`)."""
    module, func = BENCHMARKS[stage].split(":")
    return getattr(importlib.import_module(module), func)


def machine() -> str:
    """This machine in words: processor, cores, Python."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def commit() -> str | None:
    """The git commit of this checkout (with `+dirty` when it has changes), or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        sha = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("+dirty" if dirty else "")
