"""The simulator as an environment: replaying a session's keys gives its recorded frames exactly;
keys off the record act as the editor and the shell would; bad input is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ghframes import cli
from ghframes.errors import GhframesError
from ghframes.render import environment
from ghframes.render.environment import Environment
from ghframes.render.prompt import shell_words
from ghframes.render.session import FINAL_ACTION
from ghframes.render.shell import shell_word
from ghframes.store.frames import open_dataset


@pytest.fixture(scope="module")
def mono(sample_sessions, tmp_path_factory) -> str:
    """The same edits rendered with --no-color."""
    data = tmp_path_factory.mktemp("mono") / "data"
    shutil.copytree(Path(sample_sessions) / "edits", data / "edits")
    argv = ["render", str(data), "--no-progress", "--max-frames-per-session", "1500"]
    assert cli.main([*argv, "--no-color"]) == 0
    return str(data)


def assert_recorded(frame, session, t: int) -> None:
    """`frame` is recorded frame t of `session`: characters, colour planes, cursor."""
    for name, got, want in (
        ("chars", frame.chars, session.frames[t]),
        ("fg", frame.fg, session.fg[t]),
        ("bg", frame.bg, session.bg[t]),
        ("attrs", frame.attrs, session.attrs[t]),
    ):
        if not np.array_equal(got, want):
            rows = np.flatnonzero((got != want).any(axis=1)).tolist()
            pytest.fail(f"{session.id}: frame {t}: {name} differ on rows {rows}")
    assert frame.cursor == tuple(int(x) for x in session.cursor[t]), (session.id, t)


def command_lines(actions: list[str]) -> list[tuple[int, str]]:
    """(frame of its <Enter>, the line) of every command typed at the prompt in `actions`."""
    out, line, editing = [], "", False
    for t, action in enumerate(actions):
        if editing:
            editing = action != "<C-q>"
        elif action == "<Enter>":
            out.append((t, line))
            editing, line = line.startswith("edit "), ""
        elif len(action) == 1:
            line += action
    return out


def press(env: Environment, *keys: str):
    frame = env.frame()
    for key in keys:
        frame = env.step(key)
    return frame


def run(env: Environment, command: str):
    return press(env, *command, "<Enter>")


@pytest.mark.parametrize("colour", [True, False], ids=["colour", "no-color"])
def test_replaying_the_recorded_keys_reproduces_every_frame(colour, sample_sessions, mono):
    """From reset(0), each recorded action pressed gives the next recorded frame, exactly, in
    every session; between them they type every command the renderer issues."""
    data = sample_sessions if colour else mono
    dataset = open_dataset(data)
    typed = []
    coloured = False
    for info in dataset.sessions():
        session = dataset.session(info.id)
        env = Environment(data, info.id)
        assert_recorded(env.reset(0), session, 0)
        for t, action in enumerate(session.actions[:-1]):
            assert_recorded(env.step(action), session, t + 1)
        assert env.on_record and env.position == info.num_frames - 1
        assert session.actions[-1] == FINAL_ACTION
        last = env.step(FINAL_ACTION)
        assert env.done and last.text()[last.cursor[0] - 1].rstrip().endswith("$ logout")
        typed += [line for _, line in command_lines(session.actions)]
        coloured = coloured or bool(session.fg.any())
    assert coloured == colour
    assert len(dataset.sessions()) == 4
    for command in ("edit ", "git add ", "git rm -q ", "git mv ", "mkdir -p ", "touch ",
                    "ls", "git status", "git diff --stat", "git commit -am "):  # fmt: skip
        assert any(line.startswith(command) for line in typed), command


def test_reset_to_a_frame_mid_session_is_that_recorded_frame(sample_sessions):
    dataset = open_dataset(sample_sessions)
    info = dataset.sessions()[2]  # starts past the first commit
    assert info.first_commit_index > 0
    session = dataset.session(info.id)
    env = Environment(sample_sessions, info.id)
    enters = command_lines(session.actions)
    opened = next(t for t, line in enters if line.startswith("edit ")) + 1
    at_prompt = enters[-1][0] - 2  # typing the session's last command
    for t in (opened, opened + 7, at_prompt, info.num_frames - 1):
        assert_recorded(env.reset(t), session, t)
        assert env.on_record and env.position == t
        in_editor = session.frames[t][0, :8].tolist() == [ord(c) for c in "  ghedit"]
        assert (env.editor is not None) == in_editor, t
        press(env, "<Left>", "q")  # off the record, then back
        assert not env.on_record
        assert_recorded(env.reset(t), session, t)


def first_edit_of_a_file_with_text(env: Environment) -> int:
    """The first frame where the session's editor has just opened a file that has text."""
    for t, line in command_lines(env.actions):
        if line.startswith("edit "):
            env.reset(t + 1)
            if env.editor.text:
                return t + 1
    raise AssertionError("no edit of a file with text")


def test_keys_off_the_record_edit_and_save_the_file(sample_sessions):
    sid = open_dataset(sample_sessions).sessions()[0].id
    env = Environment(sample_sessions, sid)
    env.reset(first_edit_of_a_file_with_text(env))
    path, before = env.editor.path, env.editor.text
    assert shell_word(path) == path  # typed as itself below
    frame = press(env, "h", "i", "<Enter>", "<C-s>")
    expected = "hi\n" + before
    assert not env.on_record
    assert env.editor.text == expected and not env.editor.modified
    assert env.files[path] == expected
    rows = frame.text()
    assert rows[1].rstrip() == "hi" and rows[2].rstrip() == before.split("\n")[0].rstrip()
    assert rows[-1].strip() == f"[ Wrote {expected.count(chr(10)) + 1} lines ]"
    assert frame.cursor == (2, 0)
    press(env, "<C-q>")
    assert env.editor is None
    status = run(env, "git status").text()
    assert f"        modified:   {path}" in [row.rstrip() for row in status]
    run(env, f"edit {path}")
    assert env.editor.text == expected  # the saved text, not the recorded one
    press(env, "x", "<C-q>")  # quit without saving: the change is lost
    run(env, f"edit {path}")
    assert env.editor.text == expected


def test_an_unknown_command_prints_what_bash_prints(sample_sessions):
    sid = open_dataset(sample_sessions).sessions()[0].id
    env = Environment(sample_sessions, sid)
    prompt = env.reset(0).text()[0].rstrip() + " "
    rows = [row.rstrip() for row in run(env, "frobnicate --now").text()]
    assert rows[:3] == [
        prompt + "frobnicate --now",
        "bash: frobnicate: command not found",
        prompt.rstrip(),
    ]
    assert env.frame().cursor == (2, len(prompt))
    rows = [row.rstrip() for row in run(env, "ls nosuch").text()]
    assert rows[3] == "ls: cannot access 'nosuch': No such file or directory"


def test_the_prompt_edits_its_line_and_recalls_history(sample_sessions):
    sid = open_dataset(sample_sessions).sessions()[0].id
    env = Environment(sample_sessions, sid)
    prompt = env.reset(0).text()[0].rstrip() + " "
    frame = press(env, *"ecoh hi", "<Home>", "<C-Right>", "<BS>", "<BS>", "h", "o")
    assert frame.text()[0].rstrip() == prompt + "echo hi"
    assert frame.cursor == (0, len(prompt) + 4)
    frame = press(env, "<Enter>", "<Up>")
    assert [row.rstrip() for row in frame.text()[1:3]] == ["hi", prompt + "echo hi"]
    frame = press(env, "<C-a>", "<C-k>", *"echo 'a", "<Enter>", *"b'", "<Enter>")
    assert [row.rstrip() for row in frame.text()[2:6]] == [
        prompt + "echo 'a",
        "> b'",
        "a",
        "b",
    ]


def test_untrusted_text_typed_at_the_prompt_stays_data(sample_sessions):
    """A command's output reaches the terminal in visible notation: escape sequences typed in
    a command (here through bash's $'…' quoting) neither clear the screen nor colour it."""
    sid = open_dataset(sample_sessions).sessions()[0].id
    env = Environment(sample_sessions, sid)
    env.reset(0)
    frame = run(env, r"echo $'\e[2J\e[31mred\e]0;title\a'")
    rows = [row.rstrip() for row in frame.text()]
    assert rows[0].endswith(r"$ echo $'\e[2J\e[31mred\e]0;title\a'")
    assert rows[1] == "^[[2J^[[31mred^[]0;title^G"
    assert not frame.fg[1].any() and not frame.attrs[1].any()


@pytest.mark.parametrize(
    "word", ["plain", "my notes.md", "it's", "tab\there", "é世界", "\x1b[31m", "a\\b'c\"d"]
)
def test_the_renderers_quoting_reads_back_as_the_word(word):
    assert shell_words(f"git add {shell_word(word)}") == ["git", "add", word]


@pytest.mark.parametrize(
    "case, message",
    [
        ("session", "no session 'nope'"),
        ("past the end", "frame {T} is out of range (0..{last})"),
        ("negative", "frame -1 is out of range (0..{last})"),
        ("token", "action '<Nope>' is not in the vocabulary"),
        ("two characters", "action 'ab' is not in the vocabulary"),
        ("escape", "action '\\x1b[2J' is not in the vocabulary"),
        ("logged out", "the shell has logged out; reset to go on"),
    ],
)
def test_bad_input_is_one_line_naming_it(case, message, sample_sessions):
    info = open_dataset(sample_sessions).sessions()[0]
    env = Environment(sample_sessions, info.id)
    calls = {
        "session": lambda: Environment(sample_sessions, "nope"),
        "past the end": lambda: env.reset(info.num_frames),
        "negative": lambda: env.reset(-1),
        "token": lambda: env.step("<Nope>"),
        "two characters": lambda: env.step("ab"),
        "escape": lambda: env.step("\x1b[2J"),
        "logged out": lambda: (env.step("<C-d>"), env.step("a")),
    }
    with pytest.raises(GhframesError) as caught:
        calls[case]()
    text = str(caught.value)
    assert message.format(T=info.num_frames, last=info.num_frames - 1) in text
    assert "\n" not in text and "\x1b" not in text


def test_a_session_the_edits_no_longer_give_is_refused(sample_sessions, monkeypatch):
    info = open_dataset(sample_sessions).sessions()[0]
    monkeypatch.setattr(environment, "RENDERER_VERSION", "0")
    with pytest.raises(GhframesError, match="renderer version 4, this environment is version 0"):
        Environment(sample_sessions, info.id)
    monkeypatch.undo()
    plan = environment.plan_commit

    def changed(rows, options):  # the first command of the session typed otherwise
        result = plan(rows, options)
        if rows[0]["commit_index"] == info.first_commit_index:
            result.steps[0].command += "x"
        return result

    first = command_lines(Environment(sample_sessions, info.id).actions)[0][1]
    monkeypatch.setattr(environment, "plan_commit", changed)
    with pytest.raises(GhframesError) as caught:
        Environment(sample_sessions, info.id)
    assert str(caught.value) == (
        f"session {info.id}: the edits of {sample_sessions} no longer give its recorded keys "
        f"(first difference at frame {len(first)}): render {sample_sessions} again"
    )
