"""A deterministic, realistic edit history over installed Python sources, for benchmarks and tests."""

from __future__ import annotations

import importlib
import pathlib
import random

DEFAULT_PACKAGES = ("pyte", "tqdm")  # the render benchmark's and the demo corpus's sources


def realistic_history(
    num_files: int = 12,
    edits_per_file: int = 3,
    packages: tuple[str, ...] = DEFAULT_PACKAGES,
    seed: int = 0,
) -> list[list[dict]]:
    """A deterministic edit history over real source files (of the installed `packages`).

    Files are added one per commit (up to 4,000 characters each, typed in full), and each
    earlier file then gets commits that change, insert and delete a few lines: the mix of long
    typing runs and navigation a repository's early history shows. The history depends only on
    the arguments and the installed packages' sources.
    """
    sources = []
    for package in packages:
        folder = pathlib.Path(importlib.import_module(package).__file__).parent
        sources += sorted(folder.glob("*.py"))
    sources = [p for p in sources if p.stat().st_size > 1500][:num_files]
    rng = random.Random(seed)
    texts: dict[str, str] = {}
    commits: list[list[dict]] = []

    def commit(path: str, status: str, before: str | None, after: str, message: str) -> None:
        index = len(commits)
        commits.append(
            [
                {
                    "repo": "github.com/bench/history",
                    "commit": f"{index + 1:040x}",
                    "parent": f"{index:040x}" if index else None,
                    "commit_index": index,
                    "author_time": 1_700_000_000 + index * 3600,
                    "author_tz": 0,
                    "message": message,
                    "path": path,
                    "old_path": None,
                    "status": status,
                    "mode": 0o100644,
                    "before": before,
                    "after": after,
                }
            ]
        )

    for source in sources:
        path = f"{source.parent.name}/{source.name}"
        text = source.read_text()[:4000]
        commit(path, "added", None, text, f"Add {path}")
        texts[path] = text
        for _ in range(edits_per_file):
            target = rng.choice(sorted(texts))
            lines = texts[target].split("\n")
            k = rng.randrange(len(lines))
            lines[k] = lines[k].replace("self", "this") + "  # reviewed"
            lines.insert(rng.randrange(len(lines)), "    result = compute(value, limit=10)")
            del lines[rng.randrange(len(lines))]
            after = "\n".join(lines)
            commit(target, "modified", texts[target], after, f"Tweak {target}")
            texts[target] = after
    return commits


def realistic_edit_rows(num_files: int = 12, edits_per_file: int = 3) -> list[dict]:
    """`realistic_history` as the rows `ghframes.sample.write_edits` takes (its own columns
    default there), for benchmarks and tests that write edits without a git history."""
    keep = ("commit_index", "path", "status", "before", "after")
    return [
        {k: r[k] for k in keep}
        for commit in realistic_history(num_files, edits_per_file)
        for r in commit
    ]
