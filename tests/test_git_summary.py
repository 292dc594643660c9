"""The summary the crawl records for each commit is what `git commit` printed: compared with the
real git (`git show --shortstat --summary --format=`) on real repositories."""

from __future__ import annotations

import os
import random
import subprocess

import pygit2
import pytest

from conftest import GIT_ENV
from ghframes.crawl import gitdiff, history
from ghframes.store import gittext


def real_git(path, *args: str) -> list[str]:
    """`git ARGS` in `path`, its output lines (not stripped: git's lines start with a space)."""
    env = dict(os.environ, **GIT_ENV, LANG="C", LC_ALL="C")
    done = subprocess.run(
        ["git", "-c", "color.ui=never", *args], cwd=path, env=env, check=True, capture_output=True
    )
    return [line for line in done.stdout.decode("utf-8", "surrogateescape").split("\n") if line]


def git_summary(path, sha: str) -> list[str]:
    """What `git commit` printed under its first line, diffed against the first parent."""
    commit = pygit2.Repository(str(path))[sha]
    if len(commit.parents) > 1:
        lines = real_git(path, "diff", "--shortstat", "--summary", f"{sha}^1", sha)
    else:
        lines = real_git(path, "show", "--shortstat", "--summary", "--format=", sha)
        # The same lines close `git show --stat --summary`, below the per-file graph.
        stat = real_git(path, "show", "--stat", "--summary", "--format=", sha)
        assert stat[-len(lines) :] == lines
    return lines


def our_summary(path, sha: str) -> list[str]:
    repo = pygit2.Repository(str(path))
    blobs = gitdiff.Blobs(repo)
    return gitdiff.summary(
        gitdiff.changes(gitdiff.first_parent_diff(repo, repo[sha]), blobs), blobs
    )


def lines_of(n: int, seed: int, width: int = 30) -> list[str]:
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "return", "value", "self", "x", "=", "(", ")"]
    return [
        " ".join(rnd.choice(words) for _ in range(rnd.randint(1, width // 5))) for _ in range(n)
    ]


def text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def edited(lines: list[str], every: int, seed: int) -> list[str]:
    """`lines` with every `every`-th line replaced (a rename with edits)."""
    rnd = random.Random(seed)
    return [f"changed {rnd.random():.6f}" if i % every == 0 else x for i, x in enumerate(lines)]


@pytest.fixture
def history_repo(make_repo):
    """A repository whose commits hold every kind of change `git commit` summarises."""
    r = make_repo()
    base = lines_of(60, 1)
    other = lines_of(50, 2)
    shas = {}
    shas["root"] = r.commit(
        "root",
        {
            "README.md": "# readme\n",
            "src/lib/util.py": text(base),
            "src/lib/helpers.py": text(other),
            "docs/guide.txt": text(lines_of(20, 3)),
            "docs/old name.txt": "spaces\n",
            "data/blob.bin": b"\x00\x01\x02binary",
            "big.txt": "x" * 5000 + "\n",
            "empty.txt": "",
            "café/naïve.md": "unicode\n",
            "tab\there.txt": "tab\n",
            "nofinal.txt": "no final newline",
            "crlf.txt": "one\r\ntwo\r\nthree\r\n",
        },
    )
    (r.path / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(r.path / "run.sh", 0o755)
    os.symlink("README.md", r.path / "link")
    shas["exec_and_link"] = r.commit("executable and link")
    # Renames: unchanged, with edits, across folders, folding prefixes and suffixes.
    for old, new in [
        ("src/lib/util.py", "src/core/util.py"),
        ("docs/guide.txt", "guide.txt"),
        ("docs/old name.txt", "docs/new name.txt"),
        ("README.md", "docs/README.md"),
    ]:
        (r.path / new).parent.mkdir(parents=True, exist_ok=True)
        r.git("mv", old, new)
    r.change("src/core/util.py", text(edited(base, 7, 1)))
    (r.path / "link").unlink()
    os.symlink("docs/README.md", r.path / "link")
    shas["renames"] = r.commit("move things")
    # Adds, deletes, a mode change both ways, a binary edit, a large edit.
    os.chmod(r.path / "run.sh", 0o644)
    (r.path / "nofinal.txt").chmod(0o755)
    shas["modes"] = r.commit(
        "modes and more",
        {
            "data/blob.bin": b"\x00\x01\x02binary, changed",
            "big.txt": "y" * 5000 + "\n" + "more\n",
            "new/deep/file.py": "print('new')\n",
            "crlf.txt": "one\r\nTWO\r\nthree\r\n",
            "empty.txt": None,
            "café/naïve.md": None,
        },
    )
    # Renames near the 50% threshold, and several candidates for one destination.
    for k in range(3):
        r.change(f"near/f{k}.txt", text(lines_of(40, 10 + k)))
    shas["near_base"] = r.commit("near base")
    for k, every in enumerate([2, 3, 4]):
        r.change(f"near/f{k}.txt", None)
        r.change(f"far/g{k}.txt", text(edited(lines_of(40, 10 + k), every, k)))
    shas["near"] = r.commit("near renames")
    # Identical contents: git pairs the same basename first; an empty file is renamed too.
    r.commit("twins", {"a/x.txt": "same\n", "b/y.txt": "same\n", "e1": ""})
    r.change("a/x.txt", None)
    r.change("b/y.txt", None)
    r.change("e1", None)
    shas["twins"] = r.commit("twins moved", {"c/y.txt": "same\n", "d/x.txt": "same\n", "e2": ""})
    # A file becomes a symlink (git: one typechange, a `mode change … => 120000`).
    (r.path / "nofinal.txt").unlink()
    os.symlink("guide.txt", r.path / "nofinal.txt")
    shas["typechange"] = r.commit("typechange")
    # A merge, diffed against its first parent.
    r.git("checkout", "-q", "-b", "side")
    r.change("side.txt", "side\n")
    r.git("mv", "src/lib/helpers.py", "src/helpers.py")
    r.commit("side work")
    r.git("checkout", "-q", "main")
    r.commit("main work", {"main.txt": "main\n"})
    r.git("merge", "-q", "--no-ff", "-m", "merge side", "side")
    shas["merge"] = r.git("rev-parse", "HEAD")
    return r, shas


def test_summary_is_what_git_prints_for_every_kind_of_change(history_repo):
    r, shas = history_repo
    for name, sha in shas.items():
        assert our_summary(r.path, sha) == git_summary(r.path, sha), name


def test_the_cases_cover_what_they_claim(history_repo):
    r, shas = history_repo
    said = {name: "\n".join(git_summary(r.path, sha)) for name, sha in shas.items()}
    assert (
        "(root-commit)" not in said["root"] and "create mode 100644 data/blob.bin" in said["root"]
    )
    assert (
        '"caf\\303\\251/na\\303\\257ve.md"' in said["root"] and '"tab\\there.txt"' in said["root"]
    )
    assert "create mode 100755 run.sh" in said["exec_and_link"]
    assert "create mode 120000 link" in said["exec_and_link"]
    assert "rename src/{lib => core}/util.py (" in said["renames"]
    assert "rename docs/guide.txt => guide.txt (100%)" in said["renames"]
    assert "rename docs/{old name.txt => new name.txt} (100%)" in said["renames"]
    assert "mode change 100755 => 100644 run.sh" in said["modes"]
    assert "mode change 100644 => 100755 nofinal.txt" in said["modes"]
    assert "create mode 100644 new/deep/file.py" in said["modes"]
    assert said["near"].count("rename") >= 1 and said["near"].count("delete mode") >= 1
    assert (
        "rename {a => d}/x.txt (100%)" in said["twins"]
        and "rename e1 => e2 (100%)" in said["twins"]
    )
    assert "mode change 100755 => 120000 nofinal.txt" in said["typechange"]
    assert "rename src/{lib => }/helpers.py (100%)" in said["merge"]


def test_similarity_percentages_match_git_across_the_threshold(make_repo):
    """Renames edited more and more: git's percentages, and where git stops calling it a
    rename (libgit2's own scores differ here)."""
    r = make_repo()
    files = {f"d{k}/file{k}.txt": text(lines_of(30, 100 + k, 60)) for k in range(12)}
    r.commit("base", files)
    for k, (path, content) in enumerate(files.items()):
        r.change(path, None)
        lines = content.splitlines()
        r.change(
            f"e{k}/file{k}.txt" if k % 2 else f"e{k}/other{k}.txt",
            text(edited(lines, 2 + k % 6, k)),
        )
    sha = r.commit("edits of every size")
    assert our_summary(r.path, sha) == git_summary(r.path, sha)


def test_crawled_rows_carry_the_summary_branch_and_folders(make_repo):
    r = make_repo()
    r.commit("root", {"src/a.py": "a\n", "src/b.py": "b\n", ".hidden": "h\n"})
    (r.path / "pkg/sub").mkdir(parents=True)
    r.git("mv", "src/a.py", "pkg/sub/a.py")
    sha = r.commit(
        "mix",
        {"big.txt": "z" * 3000 + "\n", "img.png": b"\x89PNG\x00", "src/c.py": "c\n"},
    )
    repo = pygit2.Repository(str(r.path))
    commits = history.first_parent_chain(repo, repo.head.target)
    stats = history.MiningStats()
    branch = history.head_branch(repo)
    rows = []
    for batch in history.mine(repo, "r", commits, 0, stats, max_file_bytes=1000, branch=branch):
        cols = batch.columns
        rows += [dict(zip(cols, v, strict=True)) for v in zip(*cols.values(), strict=True)]
    mix = [row for row in rows if row["commit"] == sha]
    # The large and the binary file are skipped, yet counted in the summary.
    assert [row["path"] for row in mix] == ["pkg/sub/a.py", "src/c.py"]
    assert stats.skipped == {"too_large": 1, "binary": 1}
    assert all(row["summary"] == git_summary(r.path, sha) for row in mix)
    assert mix[0]["summary"][0] == " 4 files changed, 2 insertions(+)"
    assert branch == "main" and all(row["branch"] == "main" for row in rows)
    assert [row["new_dir"] for row in mix] == ["pkg/sub", None]
    assert mix[0]["listing"] is None  # pkg/sub did not exist
    assert mix[1]["listing"] == ["a.py", "b.py"]
    root_rows = [row for row in rows if row["commit"] != sha]
    assert all(row["listing"] is None for row in root_rows)  # a root commit has no parent tree
    assert [row["new_dir"] for row in root_rows] == [None, "src", "src"]


def test_branch_names_the_walked_branch(make_repo):
    r = make_repo()
    r.commit("one", {"a": "a\n"})
    repo = pygit2.Repository(str(r.path))
    assert history.head_branch(repo) == "main"
    assert history.head_branch(repo, "trunk") == "trunk"
    r.git("checkout", "-q", "--detach")
    assert history.head_branch(pygit2.Repository(str(r.path))) is None


@pytest.mark.parametrize(
    "old, new",
    [
        ("a/b/c.txt", "a/c.txt"),
        ("a/c.txt", "a/b/c.txt"),
        ("x.txt", "dir/x.txt"),
        ("dir/a", "other/b"),
        ("src/lib/x.py", "src/core/x.py"),
        ("abc/def.txt", "abx/def.txt"),
        ("a.txt", "b.txt"),
        ("same/path/one", "same/path/two"),
        ("p/q/r/s", "p/x/r/s"),
        ("ab/c", "abd/c"),
        ("sp ace/f", "sp ace/g"),
    ],
)
def test_rename_names_fold_like_git(make_repo, old, new):
    r = make_repo()
    r.commit("base", {old: "content\n"})
    (r.path / new).parent.mkdir(parents=True, exist_ok=True)
    r.git("mv", old, new)
    sha = r.commit("move")
    assert our_summary(r.path, sha) == git_summary(r.path, sha)
    assert f" rename {gittext.rename_name(old, new)} (100%)" in git_summary(r.path, sha)


def test_ties_between_equally_similar_sources_are_broken_as_git_breaks_them(make_repo):
    """Six deleted copies of one file, three edited copies added elsewhere: every source
    scores the same against each destination, so the order of git's candidate slots decides."""
    r = make_repo()
    body = text(lines_of(40, 7, 60))
    r.commit("copies", {f"v{k}/LICENSE": body for k in range(6)})
    lines = body.splitlines()
    for k in range(6):
        r.change(f"v{k}/LICENSE", None)
    for k in range(3):
        r.change(f"w{k}/COPYING", text(edited(lines, 3 + k, k)))
    r.change("w9/LICENSE", text(edited(lines, 5, 9)))  # one with a source's basename
    sha = r.commit("moved and edited")
    assert our_summary(r.path, sha) == git_summary(r.path, sha)
