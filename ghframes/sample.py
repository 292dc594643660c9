"""The embedded sample repository: a small project with a real, varied history, built deterministically.

`make demo` and the tests crawl it, so it needs no network. Its history holds what real
histories hold: files added, edited, renamed and deleted; a merged branch; binary, non-UTF-8,
vendored, symlinked and CRLF files; tabs, wide characters, an escape character, a line wider
than the screen, a file without a final newline. The same arguments always give the same
commit ids.

    python -m ghframes.sample PATH
"""

from __future__ import annotations

import os
import sys

import pygit2

# One fixed author, 2024-03-01 09:00 UTC+1, one hour between commits.
EPOCH = 1709280000
TZ = 60
AUTHOR = ("Ada Tally", "ada@example.org")

CORE_V1 = '''"""Counting words, lines and characters."""


def count_words(text):
    return len(text.split())
'''

CORE_V2 = '''"""Counting words, lines and characters."""


def count_words(text):
    """Number of whitespace-separated words in `text`."""
    return len(text.split())


def count_lines(text):
    """Number of lines, counting a last line without a newline."""
    if not text:
        return 0
    return text.count("\\n") + (not text.endswith("\\n"))
'''

CORE_V3 = (
    CORE_V2
    + '''

def count_chars(text, ignore_spaces=False):
    """Number of characters; with `ignore_spaces`, whitespace is not counted."""
    if ignore_spaces:
        return sum(1 for c in text if not c.isspace())
    return len(text)


def summary(text):
    return {
        "words": count_words(text),
        "lines": count_lines(text),
        "chars": count_chars(text),
    }
'''
)

CORE_V4 = CORE_V3.replace(
    "def summary(text):\n    return {",
    'def summary(text):\n    """All counts of `text` as a dict."""\n    return {',
).replace(
    '        "chars": count_chars(text),\n',
    '        "chars": count_chars(text),\n        "unique": len(set(text.split())),\n',
)

CLI_V1 = """import sys

from tally.core import count_words


def main():
    text = sys.stdin.read()
    print(count_words(text))


if __name__ == "__main__":
    main()
"""

CLI_V2 = '''"""Command line: `python -m tally [--lines|--chars|--all] [FILE...]`."""

import argparse
import sys

from tally.core import count_chars, count_lines, count_words, summary


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tally")
    parser.add_argument("files", nargs="*")
    parser.add_argument("--lines", action="store_true")
    parser.add_argument("--chars", action="store_true")
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    texts = [open(f, encoding="utf-8").read() for f in args.files] or [sys.stdin.read()]
    for text in texts:
        if args.all:
            print(summary(text))
        elif args.lines:
            print(count_lines(text))
        elif args.chars:
            print(count_chars(text))
        else:
            print(count_words(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

TESTS_V1 = """from tally.core import count_lines, count_words


def test_words():
    assert count_words("a b  c") == 3
    assert count_words("") == 0


def test_lines():
    assert count_lines("a\\nb\\n") == 2
    assert count_lines("a\\nb") == 2
"""

TESTS_V2 = (
    TESTS_V1
    + """

def test_chars():
    from tally.core import count_chars

    assert count_chars("a b") == 3
    assert count_chars("a b", ignore_spaces=True) == 2
    assert count_chars("数える") == 3
"""
)

README_V1 = """# tally

Count words, lines and characters.
"""

README_V2 = """# tally — count words, lines and characters

`tally` counts what `wc` counts, but knows about Unicode: 数える counts three characters,
and café counts four.

    python -m tally --all README.md

| flag | counts |
|------|--------|
| (none) | words |
| --lines | lines |
| --chars | characters |
"""

README_V3 = (
    README_V2
    + """
## Development

Run `make test`. The command line lives in `tally/__main__.py`.
"""
)

MAKEFILE = "test:\n\tpython -m pytest -q\n\nlint:\n\tpython -m pyflakes tally tests\n"
MAKEFILE_V2 = MAKEFILE + "\nclean:\n\trm -rf __pycache__ */__pycache__\n"

COLORS = '''"""ANSI colours for terminal output."""

RED = "\x1b[31m"
GREEN = "\x1b[32m"
RESET = "\x1b[0m"


def paint(text, colour):
    return f"{colour}{text}{RESET}"
'''

LONG_LINE = (
    "# "
    + " ".join(f"word{i}" for i in range(40))
    + "\n"
    + "VERSION_HISTORY = ["
    + ", ".join(f'"0.{i}.0"' for i in range(30))
    + "]\n"
)

RUN_BAT = (
    "@echo off\r\nrem Run tally on every text file\r\nfor %%f in (*.txt) do python -m tally %%f\r\n"
)
RUN_BAT_V2 = RUN_BAT + "pause\r\n"
NOTES = "todo: count sentences\ntodo: json output"  # no final newline
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 16
LATIN1 = "Café, crème brûlée\n".encode("latin-1")
LOCK = '{\n  "name": "tally-docs",\n  "lockfileVersion": 3,\n  "packages": {}\n}\n'
GITIGNORE = "__pycache__/\n*.pyc\n"

# (message, {path: content, None deletes, ("link", target) symlinks}, {old: new} renames, branch)
HISTORY: list[tuple[str, dict, dict, str]] = [
    ("Initial commit", {"README.md": README_V1, ".gitignore": GITIGNORE}, {}, "main"),
    ("Add word counting", {"tally/__init__.py": "", "tally/core.py": CORE_V1}, {}, "main"),
    ("Add a command line", {"tally/cli.py": CLI_V1}, {}, "main"),
    ("Count lines too", {"tally/core.py": CORE_V2}, {}, "main"),
    ("Add tests", {"tests/test_core.py": TESTS_V1, "Makefile": MAKEFILE}, {}, "main"),
    ("Add notes and a logo", {"notes.txt": NOTES, "docs/logo.png": PNG}, {}, "main"),
    (
        "Document usage\n\nExplain the flags and Unicode handling.",
        {"README.md": README_V2},
        {},
        "main",
    ),
    ("Add Windows runner", {"scripts/run.bat": RUN_BAT}, {}, "main"),
    ("Count characters; add summary", {"tally/core.py": CORE_V3}, {}, "feature"),
    ("Test character counts", {"tests/test_core.py": TESTS_V2}, {}, "feature"),
    ("Merge branch 'feature'", {}, {}, "merge:feature"),
    ("Use argparse for the command line", {"tally/cli.py": CLI_V2}, {}, "main"),
    ("Make the package runnable with python -m", {}, {"tally/cli.py": "tally/__main__.py"}, "main"),
    ("Add colours", {"tally/colors.py": COLORS}, {}, "main"),
    (
        "Add legacy sample and docs lock file",
        {"samples/latin1.txt": LATIN1, "docs/package-lock.json": LOCK},
        {},
        "main",
    ),
    ("Link latest readme", {"LATEST": ("link", "README.md")}, {}, "main"),
    ("Record versions", {"tally/versions.py": LONG_LINE}, {}, "main"),
    ("Notes are in the README now", {"notes.txt": None, "README.md": README_V3}, {}, "main"),
    ("Pause after the Windows runner", {"scripts/run.bat": RUN_BAT_V2}, {}, "main"),
    (
        "Summary counts unique words; clean target",
        {"tally/core.py": CORE_V4, "Makefile": MAKEFILE_V2},
        {},
        "main",
    ),
]


def _tree(repo: pygit2.Repository, files: dict[str, tuple[bytes, int]]) -> pygit2.Oid:
    """Write nested trees for `files` ({path: (content, mode)}) and return the root tree id."""
    children: dict[str, dict] = {}
    for path, entry in files.items():
        head, _, rest = path.partition("/")
        children.setdefault(head, {})[rest] = entry
    builder = repo.TreeBuilder()
    for name in sorted(children):
        sub = children[name]
        if "" in sub:
            data, mode = sub[""]
            builder.insert(name, repo.create_blob(data), mode)
        else:
            builder.insert(name, _tree(repo, sub), pygit2.enums.FileMode.TREE)
    return builder.write()


def build(path: str) -> pygit2.Repository:
    """Create the sample repository at `path` (which must not exist yet) and return it."""
    if os.path.exists(path):
        raise FileExistsError(path)
    repo = pygit2.init_repository(path, bare=False, initial_head="main")
    files: dict[str, dict[str, tuple[bytes, int]]] = {"main": {}}
    tips: dict[str, pygit2.Oid | None] = {"main": None}
    for i, (message, changes, renames, branch) in enumerate(HISTORY):
        when = pygit2.Signature(*AUTHOR, EPOCH + 3600 * i, TZ)
        if branch.startswith("merge:"):
            other = branch.split(":", 1)[1]
            merged = dict(files["main"]) | files[other]
            parents = [tips["main"], tips[other]]
            branch = "main"
            files["main"] = merged
        else:
            if branch not in files:  # a new branch starts at main's tip
                files[branch] = dict(files["main"])
                tips[branch] = tips["main"]
            parents = [tips[branch]] if tips[branch] else []
        tree = files[branch]
        for old, new in renames.items():
            tree[new] = tree.pop(old)
        for file, content in changes.items():
            if content is None:
                del tree[file]
            elif isinstance(content, tuple):
                tree[file] = (content[1].encode(), pygit2.enums.FileMode.LINK)
            else:
                data = content.encode() if isinstance(content, str) else content
                tree[file] = (data, pygit2.enums.FileMode.BLOB)
        tips[branch] = repo.create_commit(
            None, when, when, message + "\n", _tree(repo, tree), parents
        )
    repo.references.create("refs/heads/main", tips["main"], force=True)
    repo.references.create("refs/heads/feature", tips["feature"], force=True)
    repo.checkout_head(strategy=pygit2.enums.CheckoutStrategy.FORCE)
    return repo


def build_corpus(
    path: str,
    num_files: int = 12,
    edits_per_file: int = 4,
    packages: tuple[str, ...] | None = None,
    seed: int = 0,
) -> pygit2.Repository:
    """A larger repository at `path` for the demo's training run: real Python source typed in.

    The history is `ghframes.realistic.realistic_history` (the render benchmark's): the installed
    sources of pyte and tqdm added one file per commit, then edited, as a project's early history
    looks. The sample repository above shows every corner case; this one gives the model enough
    ordinary typing (about 44,000 frames) that held-out sessions can show it learning.
    `packages` and `seed`: the same kind of history over other installed sources (the scaling
    experiment's corpora, training/scaling).
    """
    from ghframes.realistic import DEFAULT_PACKAGES, realistic_history

    if os.path.exists(path):
        raise FileExistsError(path)
    repo = pygit2.init_repository(path, bare=False, initial_head="main")
    files: dict[str, tuple[bytes, int]] = {}
    parents: list[pygit2.Oid] = []
    history = realistic_history(num_files, edits_per_file, packages or DEFAULT_PACKAGES, seed)
    for i, changes in enumerate(history):
        for change in changes:
            if change["status"] == "deleted":
                del files[change["path"]]
            else:
                files[change["path"]] = (change["after"].encode(), pygit2.enums.FileMode.BLOB)
        when = pygit2.Signature(*AUTHOR, EPOCH + 3600 * i, TZ)
        message = changes[0]["message"] + "\n"
        parents = [repo.create_commit(None, when, when, message, _tree(repo, files), parents)]
    repo.references.create("refs/heads/main", parents[0], force=True)
    repo.checkout_head(strategy=pygit2.enums.CheckoutStrategy.FORCE)
    return repo


def build_synthetic(
    path: str, num_commits: int, num_files: int = 40, seed: int = 0
) -> pygit2.Repository:
    """A bare repository with a long generated history, for benchmarks and kill-and-resume tests.

    Each commit edits one to three files of a few dozen lines (occasionally adding or deleting
    one), the shape of ordinary development; the result is fully determined by the arguments.
    """
    import random

    rng = random.Random(seed)
    repo = pygit2.init_repository(path, bare=True, initial_head="main")
    files: dict[str, tuple[bytes, int]] = {}
    lines: dict[str, list[str]] = {}
    parent: list[pygit2.Oid] = []
    for i in range(num_commits):
        for _ in range(rng.randint(1, 3)):
            name = f"src/mod{rng.randrange(num_files)}.py"
            body = lines.setdefault(name, [f"# {name}\n"])
            if len(body) > 60 and rng.random() < 0.05:
                del files[name], lines[name]
                continue
            at = rng.randrange(len(body) + 1)
            body.insert(at, f"value_{i}_{rng.randrange(1000)} = compute({i}, {at})\n")
            if len(body) > 3 and rng.random() < 0.3:
                del body[rng.randrange(len(body))]
            files[name] = ("".join(body).encode(), pygit2.enums.FileMode.BLOB)
        when = pygit2.Signature(*AUTHOR, EPOCH + 60 * i, TZ)
        commit = repo.create_commit(None, when, when, f"Change {i}\n", _tree(repo, files), parent)
        parent = [commit]
    repo.references.create("refs/heads/main", parent[0], force=True)
    return repo


def write_edits(data_dir, rows_by_repo: dict[str, list[dict]]) -> None:
    """Write DATA/edits straight from rows, as the crawl would: one shard per repository and the
    manifest (for benchmarks and tests that need edits without a git history).

    Each row needs path, status, before, after and commit_index; the other columns of
    schemas/edits.json get defaults (commit ids derived from the commit index).
    """
    import pyarrow as pa

    from ghframes.store import schema, shards

    edits = schema.load("edits")
    fs, root = shards.filesystem(str(data_dir))
    repos = {}
    for key, rows in rows_by_repo.items():
        full = []
        for row in sorted(rows, key=lambda r: (r["commit_index"], r["path"])):
            index = row["commit_index"]
            full.append(
                {
                    "repo": key,
                    "commit": f"{index + 1:040x}",
                    "parent": f"{index:040x}" if index else None,
                    "commit_index": index,
                    "author_time": 1_700_000_000 + index,
                    "author_tz": 0,
                    "message": f"Commit {index}",
                    "old_path": None,
                    "mode": 0o100644,
                    **row,
                }
            )
        table = pa.Table.from_pylist(full, schema=edits.arrow)
        name = f"{shards.safe_name(key)}.parquet"
        size = shards.write_table(fs, f"{root}/edits/{name}", table, edits)
        repos[key] = {
            "repo": key,
            "status": "ok",
            "shards": [name],
            "commits": len({r["commit_index"] for r in full}),
            "changes": len(full),
            "bytes": size,
            "skipped": {},
        }
    shards.write_manifest(
        fs, f"{root}/edits", {"table": "edits", "version": edits.version, "repos": repos}
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m ghframes.sample PATH")
    repo = build(sys.argv[1])
    print(f"sample repository at {sys.argv[1]}: {len(HISTORY)} commits, head {repo.head.target}")
