"""The scaling experiment's data: realistic histories over installed sources, crawled and rendered.

Repository i types in the sources of CORPUS_PACKAGES[i] (the first is the demo's corpus, the
render benchmark's history); packages that are not installed are passed over, and a corpus
whose packages are all missing is named in the error. Crawl and render are the commands a user
runs (`python -m ghframes crawl`, `... render`, as subprocesses: training/ does not import the
command line), so the frames are the current renderer's; when the data is already there, both
say "up to date" and cost seconds.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable

from ghframes.errors import GhframesError

from . import CORPUS_PACKAGES, Preset


def corpus_packages(preset: Preset) -> list[tuple[str, ...]]:
    """The packages of each of the preset's repositories: the installed ones of each pair."""
    chosen = []
    for pair in CORPUS_PACKAGES[: preset.corpora]:
        installed = tuple(p for p in pair if importlib.util.find_spec(p) is not None)
        if not installed:
            raise GhframesError(
                f"scaling data: none of {', '.join(pair)} is installed; the corpus types their "
                "sources in (pip install them, or lower the preset's corpora)"
            )
        chosen.append(installed)
    return chosen


def build_data(preset: Preset, data: str, log: Callable[[str], None] = print) -> str:
    """DATA with the preset's repositories crawled and rendered; returns `data`."""
    from ghframes import sample

    repos = []
    for packages in corpus_packages(preset):
        path = os.path.join(data, "repos", "corpus-" + "-".join(packages).strip("_"))
        if not os.path.isdir(path):
            sample.build_corpus(path, preset.files_per_corpus, preset.edits_per_file, packages)
            log(f"built {path} ({', '.join(packages)} sources typed in)")
        repos.append(path)
    for argv in (
        ["crawl", *repos, "--out", data],
        ["render", data, "--max-frames-per-session", str(preset.max_frames_per_session)],
    ):
        # The commands a user runs, each in its own process (its embedded Ray ends with it).
        code = subprocess.call([sys.executable, "-m", "ghframes", *argv])
        if code != 0:
            raise GhframesError(f"scaling data: `ghframes {' '.join(argv)}` failed (exit {code})")
    return data
