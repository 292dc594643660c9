"""Sessions and commit plans: shell text, commit summaries, budgets, grouping, screen capture."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from test_render import EVERY_THIRD_GONE, TALL, commits_from, tiny_repo

from ghframes.render.commits import group_into_sessions, plan_commit
from ghframes.render.session import RenderOptions, render_session
from ghframes.render.shell import shell_word, shown_path
from ghframes.render.terminal import text_of
from ghframes.store.codec import decode_chunk


def test_session_frames_actions_and_commit_boundaries():
    chunks, meta = render_session("local/tiny", commits_from(tiny_repo()), RenderOptions())
    actions = [a for chunk in chunks["actions"] for a in chunk]
    assert len(actions) == meta["num_frames"] == sum(chunks["num_frames"])
    assert actions[-1] == "<C-d>" and meta["unknown_sequences"] == 0
    frames = np.concatenate(
        [
            decode_chunk(b, i, n)
            for b, i, n in zip(
                chunks["frames"], chunks["frame_itemsize"], chunks["num_frames"], strict=True
            )
        ]
    )
    assert text_of(frames[0])[0].startswith("dev@ghframes:~/tiny$")
    # Each commit starts on a prompt where its first command is typed.
    for index, _, first in meta["commits"][1:]:
        row = text_of(frames[first])
        assert any(line.rstrip().endswith("$") for line in row), index
    statuses = [c["status"] for c in meta["changes"]]
    assert statuses == ["added", "modified", "modified", "renamed", "deleted"]
    typed = "".join(a for a in actions if len(a) == 1)
    assert "chmod +x main.py" in typed and "git mv main.py 'docs/my notes.md'" in typed
    assert "git rm -q 'docs/my notes.md'" in typed


def test_incremental_capture_equals_a_full_read_of_the_screen(monkeypatch):
    """Frames come from pyte's dirty rows only; every one must equal the whole screen read afresh
    (shell scrolling, the alternate screen and its restore, line inserts and deletes)."""
    from ghframes.render.terminal import COLS, ROWS, WIDE_STUB, Terminal

    capture = Terminal.capture
    captured = []

    def checked(self):
        codes = capture(self)
        full = np.full((ROWS, COLS), ord(" "), dtype=np.uint32)
        for y, row in self.screen.buffer.items():
            for x, char in row.items():
                if y < ROWS and x < COLS:
                    full[y, x] = ord(char.data[0]) if char.data else WIDE_STUB
        assert (codes == full).all(), f"frame {len(captured)}"
        captured.append(1)
        return codes

    monkeypatch.setattr(Terminal, "capture", checked)
    tall = "".join(f"line {i}\n" for i in range(120))
    rows = tiny_repo(14) + [
        {"commit_index": 20, "path": "t.txt", "status": "added", "before": None, "after": tall},
        {
            "commit_index": 21,
            "path": "t.txt",
            "status": "modified",
            "before": tall,
            "after": tall.replace("line 90\n", "").replace("line 7\n", "line 7\nnew\n"),
        },
    ]
    _, meta = render_session("local/tiny", commits_from(rows), RenderOptions())
    assert len(captured) == meta["num_frames"] > 1000


def test_budget_skips_are_counted_not_silent():
    rows = [
        {
            "commit_index": 0,
            "path": "big.txt",
            "status": "added",
            "before": None,
            "after": "a line of words\n" * 32,
        },
        {"commit_index": 0, "path": "small.txt", "status": "added", "before": None, "after": "y\n"},
    ]
    options = RenderOptions(max_typed_chars_per_change=100)
    _, meta = render_session("local/r", commits_from(rows), options)
    assert meta["skipped"] == {"change_typing_budget": 1}
    outcomes = {c["path"]: c["outcome"] for c in meta["changes"]}
    assert outcomes == {"big.txt": "change_typing_budget", "small.txt": "rendered"}


def test_action_budget_bounds_deletions_and_navigation():
    """Keys that type nothing count as well: a change over --max-actions-per-change is skipped
    and counted like one over the typing budget, not played as thousands of frames."""
    small = {"commit_index": 0, "path": "small.txt", "status": "added", "before": None}
    cut = {"commit_index": 0, "path": "cut.txt", "status": "modified"}
    # A 30,000-line file cut to one line: 30,001 keys, nothing typed; over the default bound,
    # seen from the line counts alone (no plan made).
    tall = "".join(f"line {i}\n" for i in range(30_000))
    rows = [dict(cut, before=tall, after="line 0\n"), dict(small, after="y\n")]
    _, meta = render_session("local/r", commits_from(rows), RenderOptions())
    assert meta["skipped"] == {"change_action_budget": 1} and meta["num_frames"] < 200
    outcomes = {c["path"]: c["outcome"] for c in meta["changes"]}
    assert outcomes == {"cut.txt": "change_action_budget", "small.txt": "rendered"}
    # One line in three deleted: 667 lines fewer, but 2,000 keys once planned (<C-k>, <Down>).
    options = RenderOptions(max_actions_per_change=1000)
    rows = [dict(cut, before=TALL, after=EVERY_THIRD_GONE), dict(small, after="y\n")]
    _, meta = render_session("local/r", commits_from(rows), options)
    assert meta["skipped"] == {"change_action_budget": 1}
    assert [c["editor_actions"] for c in meta["changes"] if "editor_actions" in c] == [3]
    # within the bound, the same change is played (the replay typist's exact key count)
    _, meta = render_session("local/r", commits_from(rows), RenderOptions(typist="replay"))
    assert meta["skipped"] == {} and meta["changes"][0]["editor_actions"] == 2000


def test_newlines_count_toward_the_typing_budget():
    """Every <Enter> is a character typed: in a new file, amid lines and past the last line, and
    the commit's typing budget sees them (two changes of 40 typed characters each, bound 60)."""
    from ghframes.render.replay import plan_edit

    assert plan_edit("", "\n" * 10).typed == 10
    assert plan_edit("", "a\nb\nc").typed == 5
    assert plan_edit("a\nb\n", "a\nx\ny\nb\n").typed == 4
    assert plan_edit("a\nb", "a\nb\nc\nd").typed == 4
    lines = {"commit_index": 0, "status": "modified", "before": "top\n"}
    rows = [
        dict(lines, path="a.txt", after="top\n" + "\n" * 40),
        dict(lines, path="b.txt", after="top\n" + "\n" * 40),
    ]
    _, meta = render_session(
        "local/r", commits_from(rows), RenderOptions(max_typed_chars_per_commit=60)
    )
    assert meta["skipped"] == {"commit_typing_budget": 1}
    assert [c["outcome"] for c in meta["changes"]] == ["rendered", "commit_typing_budget"]


NUMSTAT_CASES = [
    ("", "a\nb"),  # a new file without a final newline: no phantom deletion
    ("a", "a\n"),  # a final newline added: one line out, one in
    ("a\nb\n", "a\nc\n"),
    ("x\n" * 5, ""),
    ("one\r\ntwo", "one\r\ntwo\r\nthree\r\n"),
    ("".join(f"line {i}\n" for i in range(60)), "".join(f"line {i}\n" for i in range(3, 62, 2))),
]


@pytest.mark.parametrize("before, after", NUMSTAT_CASES)
def test_commit_summary_counts_lines_as_git_does(tmp_path, before, after):
    from ghframes.render.replay import line_changes

    (tmp_path / "a").write_bytes(before.encode())
    (tmp_path / "b").write_bytes(after.encode())
    done = subprocess.run(
        ["git", "diff", "--no-index", "--numstat", "a", "b"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1"),
    )
    inserted, deleted = (int(n) for n in done.stdout.split()[:2])
    assert line_changes(before, after) == (inserted, deleted)


def test_commit_summary_reads_like_git():
    added = {"commit_index": 0, "path": "notes.txt", "status": "added", "before": None}
    renamed = {"commit_index": 1, "path": "new.py", "old_path": "old.py", "status": "renamed"}
    rows = [dict(added, after="a\nb"), dict(renamed, before="x\n", after="x\n")]
    added, renamed = commits_from(rows)
    options = RenderOptions()
    assert plan_commit(added, options).steps[-1].output[1:] == [
        " 1 file changed, 2 insertions(+)",
        " create mode 100644 notes.txt",
    ]
    assert plan_commit(renamed, options).steps[-1].output[1:] == [
        " 1 file changed, 0 insertions(+), 0 deletions(-)"
    ]


def test_group_into_sessions_only_at_commit_boundaries():
    assert group_into_sessions([5, 5, 5], 100) == [(0, 3)]
    assert group_into_sessions([5, 5, 5], 11) == [(0, 2), (2, 3)]
    assert group_into_sessions([50, 5], 10) == [(0, 1), (1, 2)]


def test_shell_words_are_typable_and_quoted():
    assert shell_word("src/a.py") == "src/a.py"
    assert shell_word("my notes.md") == "'my notes.md'"
    assert shell_word("it's") == "'it'\\''s'"
    assert shell_word("a\x1bb") == "$'a\\x1bb'"
    assert shown_path("a\x1bb\tc") == '"a\\033b\\011c"'


def test_paths_with_escape_sequences_are_never_executed():
    rows = [
        {
            "commit_index": 0,
            "path": "\x1b[2Jx\x9b.txt",
            "status": "added",
            "before": None,
            "after": "a\n",
        }
    ]
    chunks, meta = render_session("local/\x1b]0;t\x07", commits_from(rows), RenderOptions())
    assert meta["unknown_sequences"] == 0
    last = decode_chunk(
        chunks["frames"][-1], chunks["frame_itemsize"][-1], chunks["num_frames"][-1]
    )[-1]
    assert any('create mode 100644 "\\033[2Jx\\302\\233.txt"' in line for line in text_of(last))
