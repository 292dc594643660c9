"""The shell's colours: a Debian bash prompt, and git's own colours for `git status` and
`git diff --stat`, compared cell by cell with what the real git draws on a terminal."""

from __future__ import annotations

import os
import subprocess

import pyte

from conftest import GIT_ENV
from ghframes.render.session import RenderOptions, render_session
from ghframes.render.shell import coloured, prompt_for, status_lines, visible
from ghframes.store.gittext import stat_lines

ENV = dict(os.environ, **GIT_ENV, LANG="C", LC_ALL="C")


def screen_of(text: str) -> list[list[tuple]]:
    """Characters with their colours and bold flag, as pyte draws `text` (lines)."""
    screen = pyte.Screen(160, 12)
    pyte.Stream(screen).feed(text.replace("\n", "\r\n"))
    return [
        [(c.data, c.fg, c.bg, c.bold) for c in (screen.buffer[y][x] for x in range(160))]
        for y in range(12)
    ]


def git(cwd, *argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=cwd, env=ENV, check=True, capture_output=True)
    return done.stdout.decode()


def test_the_prompt_is_bold_green_user_host_and_bold_blue_path():
    cells = screen_of(prompt_for("github.com/o/tally"))[0]
    text = "".join(c[0] for c in cells).rstrip()
    assert text == "dev@ghframes:~/tally$"
    assert {c[1:] for c in cells[:12]} == {("green", "default", True)}  # dev@ghframes
    assert cells[12][1:] == ("default", "default", False)  # the colon
    assert {c[1:] for c in cells[13:20]} == {("blue", "default", True)}  # ~/tally
    assert prompt_for("github.com/o/tally", color=False) == "dev@ghframes:~/tally$ "


def test_git_status_is_coloured_as_git_colours_it(make_repo):
    r = make_repo()
    r.commit("base", {"keep.txt": "k\n", "edit.txt": "e\n", "gone.txt": "g\n"})
    r.git("rm", "-q", "gone.txt")
    r.change("edit.txt", "e\n2\n")
    r.change("added.txt", "a\n")
    r.git("add", "added.txt")
    r.change("untracked.txt", "u\n")
    real = git(r.path, "-c", "color.ui=always", "status")
    lines = status_lines(
        "main",
        False,
        {"added.txt": ("A", None), "gone.txt": ("D", None)},
        {"edit.txt": "M"},
        ["untracked.txt"],
    )
    ours = coloured("git status", [visible(line) for line in lines])
    assert screen_of("\n".join(ours) + "\n") == screen_of(real)
    assert "\x1b[32m" in real and "\x1b[31m" in real  # the comparison saw both colours


def test_git_diff_stat_is_coloured_as_git_colours_it(make_repo):
    r = make_repo()
    r.commit("base", {"a.txt": "1\n2\n3\n", "b.txt": "x\n"})
    r.change("a.txt", "1\nchanged\n3\nmore\n")
    r.change("b.txt", "")
    real = git(r.path, "-c", "color.ui=always", "diff", "--stat")
    ours = coloured("git diff --stat", stat_lines([("a.txt", 2, 1), ("b.txt", 0, 1)], 160))
    assert screen_of("\n".join(ours) + "\n") == screen_of(real)


def test_no_color_sessions_hold_no_colour_codes():
    from ghframes.realistic import realistic_history

    commits = realistic_history(2, 1)
    for color in (True, False):
        chunks, meta = render_session("github.com/t/t", commits, RenderOptions(color=color))
        assert meta["options"]["color"] is color
        assert meta["unknown_sequences"] == 0
