"""The shell as a person uses it: every command of a plan runs in a real shell on a real
checkout, and what `ls`, `git status`, `git diff --stat` and `git commit` print there is what
the plan shows."""

from __future__ import annotations

import os
import random
import subprocess

import pyarrow as pa
import pygit2
import pytest

from conftest import GIT_ENV
from ghframes.crawl import history
from ghframes.render import commits as commit_plans
from ghframes.render.commits import plan_commit
from ghframes.render.session import RenderOptions
from ghframes.render.shell import ls_lines, status_lines, visible
from ghframes.store import gittext, schema
from ghframes.store.edits import commits_of

ENV = dict(os.environ, **GIT_ENV, LANG="C", LC_ALL="C")
LS_ENV = dict(ENV, LC_ALL="C.UTF-8", COLUMNS="160")


def run(cwd, *argv: str, env=None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env or ENV, check=True, capture_output=True)
    return done.stdout.decode()


def output_of(text: str) -> list[str]:
    """A command's output as the terminal shows it: lines, tabs at 8-column stops."""
    return [visible(line) for line in text.split("\n")[:-1]] if text else []


def real_ls(cwd, folder: str) -> list[str]:
    # On a terminal ls quotes in the shell-escape style; in a pipe it has to be asked to.
    args = ["ls", "-C", "--quoting-style=shell-escape"] + ([folder] if folder else [])
    return output_of(run(cwd, *args, env=LS_ENV))


def kind(command: str) -> str:
    """A command's name: `git status`, `mkdir`, `ls`, …"""
    words = command.split(" ")
    return " ".join(words[:2]) if words[0] == "git" else words[0]


def mined_commits(path) -> list[list[dict]]:
    """The repository's edit rows as the render reads them (through Arrow), by commit."""
    repo = pygit2.Repository(str(path))
    chain = history.first_parent_chain(repo, repo.head.target)
    columns = {name: [] for name in history.COLUMNS}
    for batch in history.mine(
        repo, "local/r", chain, 0, history.MiningStats(), max_file_bytes=2000, branch="main"
    ):
        for name, values in batch.columns.items():
            columns[name] += values
    return commits_of(pa.table(columns, schema=schema.load("edits").arrow))


def checkout_parent(origin, rows, tmp_path):
    """A work tree where the person stands before the commit: the parent, on branch main."""
    work = tmp_path / f"work{rows[0]['commit_index']}"
    if rows[0]["parent"] is None:
        run(tmp_path, "git", "init", "-q", "-b", "main", str(work))
    else:
        run(tmp_path, "git", "clone", "-q", str(origin), str(work))
        run(work, "git", "checkout", "-q", "-B", "main", rows[0]["parent"])
        run(work, "git", "remote", "remove", "origin")  # no upstream to be ahead of
    return work


def play(plan, rows, work) -> list[str]:
    """Run every step of `plan` in `work` as a person would, checking each output; return what
    the real `git commit` printed under its first line."""
    for step in plan.steps:
        command = step.command
        if command.startswith("edit "):
            row = rows[step.change]
            # The editor saves; a folder that does not exist yet fails here, as it would.
            with open(work / row["path"], "w", encoding="utf-8", newline="") as f:
                f.write(row["after"])
        elif command == "git status":
            assert step.output == output_of(run(work, "git", "-c", "color.ui=never", "status"))
        elif command == "git diff --stat":
            real = run(work, "git", "diff", "--stat", env=dict(ENV, COLUMNS="160"))
            assert step.output == output_of(real)
        elif command == "ls" or command.startswith("ls "):
            folder = command[3:].strip("'")
            assert step.output == real_ls(work, folder), command
        elif command.startswith("git commit"):
            said = run(work, "bash", "-c", command)
            assert said.startswith(step.output[0].split(" ", 1)[0])  # [main or [main (root-commit)
            return output_of(said)[1:]
        else:
            run(work, "bash", "-c", command)
    raise AssertionError("a plan ends with git commit")


@pytest.fixture
def shell_repo(make_repo):
    r = make_repo()
    r.commit(
        "root",
        {
            "README.md": "# hi\n",
            "a/b/c/deep.txt": "deep\n",
            "a/x.txt": "x\n",
            "docs/my notes.md": "notes\n",
            "gone/only.txt": "only\n",
            "src/main.py": "print('main')\n",
            "src/util.py": "".join(f"line {i}\n" for i in range(40)),
            "src/café.py": "# accent\n",
        },
    )
    r.git("mv", "src/util.py", "src/tools.py")
    (r.path / "lib/new").mkdir(parents=True)
    r.git("mv", "src/main.py", "lib/new/main.py")
    r.change("src/tools.py", "".join(f"line {i}\n" for i in range(40) if i % 9) + "tail\n")
    r.change("gone/only.txt", None)
    r.change("gone/zz.txt", "back\n")
    r.change("src/added.py", "added = True\n")
    r.change("README.md", "# hi\n\nmore\n")
    r.change("docs/my notes.md", None)
    (r.path / "a/x.txt").chmod(0o755)
    r.commit("second")
    r.commit(
        "third",
        {
            "pkg/sub/one.py": "1\n",
            "pkg/two.py": "2\n",
            "pkg/sub/deeper/three.py": "3\n",
            "blob.bin": b"\x00binary",
            "big.txt": "z" * 3000,
            "src/added.py": "added = False\n",
        },
    )
    return r


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_every_plan_runs_in_a_real_shell_with_git_s_own_output(
    shell_repo, tmp_path, monkeypatch, probability
):
    for name in ("LS_PROBABILITY", "STATUS_PROBABILITY", "DIFF_STAT_PROBABILITY"):
        monkeypatch.setattr(commit_plans, name, probability)
    seen = set()
    for rows in mined_commits(shell_repo.path):
        plan = plan_commit(rows, RenderOptions())
        said = play(plan, rows, checkout_parent(shell_repo.path, rows, tmp_path))
        seen.update(kind(step.command) for step in plan.steps)
        if int(rows[0]["summary"][0].split()[0]) == len(rows):
            # Nothing skipped: git commits the rendered files and says what the crawl recorded.
            assert said == plan.steps[-1].output[1:]
    looks = {"ls", "git status", "git diff"}
    assert "mkdir" in seen and (looks <= seen if probability else not looks & seen)


def test_mkdir_once_per_folder_and_only_where_it_is_missing(shell_repo, monkeypatch):
    for name in ("LS_PROBABILITY", "STATUS_PROBABILITY", "DIFF_STAT_PROBABILITY"):
        monkeypatch.setattr(commit_plans, name, 0.0)
    root, second, third = mined_commits(shell_repo.path)
    mkdirs = [
        [
            s.command
            for s in plan_commit(rows, RenderOptions()).steps
            if s.command.startswith("mkdir")
        ]
        for rows in (root, second, third)
    ]
    # a/b/c first; a/x.txt needs nothing more (a/b/c is below a), nor does README.md.
    assert mkdirs[0] == ["mkdir -p a/b/c", "mkdir -p docs", "mkdir -p gone", "mkdir -p src"]
    # lib/new did not exist; gone/ was emptied by `git rm` just before a file lands in it.
    assert mkdirs[1] == ["mkdir -p gone", "mkdir -p lib/new"]
    # pkg/sub/deeper first: pkg/sub and pkg exist from then on.
    assert mkdirs[2] == ["mkdir -p pkg/sub/deeper"]


def test_plans_are_the_same_for_the_same_seed_and_differ_across_seeds(shell_repo):
    commits = mined_commits(shell_repo.path)
    for rows in commits:
        a = [s.command for s in plan_commit(rows, RenderOptions(seed=1)).steps]
        assert a == [s.command for s in plan_commit(rows, RenderOptions(seed=1)).steps]
    seen = set()
    for seed in range(100):
        for rows in commits:
            seen.update(kind(s.command) for s in plan_commit(rows, RenderOptions(seed=seed)).steps)
    assert {"ls", "git status", "git diff"} <= seen


def test_edits_of_schema_1_0_render_as_before(shell_repo):
    rows = mined_commits(shell_repo.path)[1]
    old = [
        {k: v for k, v in row.items() if k not in ("branch", "summary", "new_dir", "listing")}
        for row in rows
    ]
    plan = plan_commit(old, RenderOptions())
    commands = [s.command for s in plan.steps]
    assert not any(c.startswith(("mkdir", "ls", "git status", "git diff")) for c in commands)
    assert plan.steps[-1].output[0].startswith("[main ")


def test_recorded_summary_is_shown_and_escaped(shell_repo):
    rows = [dict(row) for row in mined_commits(shell_repo.path)[2]]
    for row in rows:
        row["summary"] = [" 1 file changed, 1 insertion(+)", " create mode 100644 \x1b[2Jx"]
        row["branch"] = None
    out = plan_commit(rows, RenderOptions()).steps[-1].output
    assert out[0].startswith("[detached HEAD ")
    assert out[1:] == [" 1 file changed, 1 insertion(+)", " create mode 100644 ^[[2Jx"]


LS_NAMES = [
    "README.md",
    "a b",
    "it's",
    "#hash",
    "x#y",
    "~tilde",
    "café.txt",
    "plain",
    ".hidden",
    "m$x",
    "數據.md",
] + [f"name{'x' * (i % 13)}{i}.py" for i in range(70)]


UNQUOTED = [n for n in LS_NAMES if not set(n) & set("' $#~")]


@pytest.mark.parametrize("names", [LS_NAMES, ["plain"], UNQUOTED, [f"f{i}" for i in range(5)]])
@pytest.mark.parametrize("width", [160, 80, 33])
def test_ls_columns_are_the_real_ls(tmp_path, names, width):
    folder = tmp_path / "d"
    folder.mkdir()
    for name in names:
        (folder / name).write_text("")
    real = output_of(
        run(
            folder, "ls", "-C", "--quoting-style=shell-escape", env=dict(LS_ENV, COLUMNS=str(width))
        )
    )
    assert ls_lines(sorted(names), width) == real
    if names is not LS_NAMES:  # names ls does not quote: a pipe's literal style is the same
        plain = output_of(run(folder, "ls", "-C", env=dict(LS_ENV, COLUMNS=str(width))))
        assert ls_lines(sorted(names), width) == plain


def test_ls_leaves_out_names_it_would_quote_otherwise():
    assert ls_lines(["it's $HOME"], 160) is None
    assert ls_lines(["tab\there"], 160) is None


def status_case(make_repo, initial: bool):
    r = make_repo()
    if not initial:
        r.commit(
            "base", {"keep.txt": "k\n", "old.txt": "o\n", "edit me.txt": "e\n", "gone.txt": "g\n"}
        )
    return r


def test_git_status_text_is_git_s(make_repo):
    r = status_case(make_repo, initial=False)
    r.git("mv", "old.txt", "new.txt")
    r.git("rm", "-q", "gone.txt")
    r.change("edit me.txt", "e\n2\n")
    r.change("new.txt", "o\nmore\n")
    r.change("added.txt", "a\n")
    r.git("add", "added.txt")
    r.change("untracked é.txt", "u\n")
    real = output_of(run(r.path, "git", "-c", "color.ui=never", "status"))
    ours = status_lines(
        "main",
        False,
        {"new.txt": ("R", "old.txt"), "gone.txt": ("D", None), "added.txt": ("A", None)},
        {"edit me.txt": "M", "new.txt": "M"},
        ["untracked é.txt"],
    )
    assert [visible(line) for line in ours] == real


@pytest.mark.parametrize("kind", ["modified only", "untracked only", "initial"])
def test_git_status_closing_lines_are_git_s(make_repo, kind):
    r = status_case(make_repo, initial=kind == "initial")
    staged, unstaged, untracked = {}, {}, []
    if kind == "modified only":
        r.change("keep.txt", "k2\n")
        unstaged = {"keep.txt": "M"}
    elif kind == "untracked only":
        r.change("new.txt", "n\n")
        untracked = ["new.txt"]
    else:
        r.change("first.txt", "f\n")
        r.git("add", "first.txt")
        r.change("later.txt", "l\n")
        staged, untracked = {"first.txt": ("A", None)}, ["later.txt"]
    real = output_of(run(r.path, "git", "-c", "color.ui=never", "status"))
    ours = status_lines("main", kind == "initial", staged, unstaged, untracked)
    assert [visible(line) for line in ours] == real


def test_git_diff_stat_scales_like_git_at_160_columns(make_repo):
    r = make_repo()
    long_name = "very/" + "long_folder_name/" * 8 + "file.py"
    files = {
        "small.txt": "a\n",
        "big.py": "".join(f"{i}\n" for i in range(400)),
        long_name: "x\n",
        "mode.sh": "echo\n",
        "sp ace.txt": "s\n",
    }
    r.commit("base", files)
    rnd = random.Random(3)
    r.change("small.txt", "b\n")
    r.change("big.py", "".join(f"{i}\n" for i in range(400) if rnd.random() < 0.4) + "new\n" * 250)
    r.change(long_name, "y\nz\n")
    r.change("sp ace.txt", "t\n")
    (r.path / "mode.sh").chmod(0o755)
    repo = pygit2.Repository(str(r.path))
    entries = []
    for path in sorted(files):
        before = repo.revparse_single(f"HEAD:{path}").data
        after = (r.path / path).read_bytes()
        _, added, deleted = pygit2.Patch.create_from(before, after, context_lines=0).line_stats
        entries.append((path, added, deleted))
    real = output_of(run(r.path, "git", "diff", "--stat", env=dict(ENV, COLUMNS="160")))
    assert gittext.stat_lines(entries, 160) == real
    assert any(line.startswith(" .../") for line in real)  # the long name was cut, as git cuts


def test_edits_1_0_shards_still_read_and_render_as_before(shell_repo, tmp_path):
    """A shard written before 1.1 (no branch, summary, new_dir, listing) beside a 1.1 one."""
    import pyarrow.parquet as pq

    from ghframes.store import shards
    from ghframes.store.edits import read_edits

    edits = schema.load("edits")
    new = ("branch", "summary", "new_dir", "listing")
    commits = mined_commits(shell_repo.path)
    old_rows = [{k: v for k, v in row.items() if k not in new} for row in commits[1]]
    old_schema = pa.schema(
        [f for f in edits.arrow if f.name not in new],
        metadata={schema.TABLE_KEY: b"edits", schema.VERSION_KEY: b"1.0"},
    )
    root = tmp_path / "edits"
    root.mkdir()
    pq.write_table(pa.Table.from_pylist(old_rows, schema=old_schema), root / "old.parquet")
    current = pa.Table.from_pylist(commits[2], schema=edits.arrow)
    fs, _ = shards.filesystem(str(tmp_path))
    shards.write_table(fs, str(root / "new.parquet"), current, edits)
    table, _ = read_edits(fs, str(root), ["old.parquet", "new.parquet"], "k")
    assert table.schema.names == edits.names
    second, third = commits_of(table)
    assert all(row[name] is None for row in second for name in new)
    plan = plan_commit(second, RenderOptions())
    # Computed from the rendered rows, as before 1.1: no rename or mode change lines.
    assert plan.steps[-1].output[0].startswith("[main ")
    assert plan.steps[-1].output[1:] == [
        " 8 files changed, 5 insertions(+), 7 deletions(-)",
        " delete mode 100644 docs/my notes.md",
        " delete mode 100644 gone/only.txt",
        " create mode 100644 gone/zz.txt",
        " create mode 100644 src/added.py",
    ]
    assert third[0]["summary"] == commits[2][0]["summary"]
