"""The terminal viewer, driven in a real terminal: tmux runs it, send-keys types, capture-pane reads."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from test_export import dataset, synthetic_session  # noqa: F401  (shared rendered sample)

from ghframes import cli
from ghframes.chunks import open_lazy
from ghframes.terminal import text_of

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux)"
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Tmux:
    def __init__(self, name: str, width: int, height: int, argv: list[str]) -> None:
        self.sock = f"gfview{os.getpid()}{name}"
        command = " ".join(f"'{a}'" for a in [sys.executable, "-m", "ghframes", *argv])
        env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm-256color")
        subprocess.run(
            [
                "tmux",
                "-L",
                self.sock,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                str(width),
                "-y",
                str(height),
                f"cd '{ROOT}' && {command}; echo EXITED $?; sleep 60",
            ],
            check=True,
            env=env,
        )

    def keys(self, *keys: str, literal: bool = False) -> None:
        extra = ["-l"] if literal else []
        for key in keys:
            subprocess.run(["tmux", "-L", self.sock, "send-keys", *extra, key], check=True)
            time.sleep(0.05)

    def pane(self) -> list[str]:
        out = subprocess.run(
            ["tmux", "-L", self.sock, "capture-pane", "-p"], capture_output=True, text=True
        )
        return out.stdout.split("\n")

    def wait(self, pattern: str, timeout: float = 10.0) -> list[str]:
        deadline = time.time() + timeout
        while True:
            lines = self.pane()
            if re.search(pattern, "\n".join(lines)):
                return lines
            if time.time() > deadline:
                raise AssertionError(f"{pattern!r} never appeared:\n" + "\n".join(lines))
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


_servers = itertools.count()


@pytest.fixture
def tmux():
    opened = []

    def start(width, height, argv):
        # A fresh server name every time: a server killed by the previous test may still be
        # exiting on its socket, and a new session there fails with "server exited unexpectedly".
        t = Tmux(f"t{next(_servers)}", width, height, argv)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()


def status_frame(lines: list[str]) -> int:
    for line in lines:
        m = re.search(r"frame (\d+)/(\d+)", line)
        if m:
            return int(m.group(1))
    raise AssertionError("no status line:\n" + "\n".join(lines))


def test_list_play_step_jump_goto_search_and_quit(dataset, tmux):  # noqa: F811
    data, sid = dataset
    session = open_lazy(data, sid)
    n = len(session)
    t = tmux(200, 52, ["view", data])
    t.wait(r"1 sessions in")
    lines = t.wait(sid)
    assert re.search(rf"{sid}\s+\S+\s+{len(session.commits)}\s+{n}", "\n".join(lines))
    t.keys("Enter")
    lines = t.wait(rf"frame 0/{n} ")
    status = next(line for line in lines if "frame 0/" in line)
    assert "Initial commit" in status and f"action {session.actions[0]}" in status
    # the screen shows frame 0 exactly, with the actions column beside it
    frame = text_of(session.frame(0))
    assert [line[:160].rstrip() for line in lines[:48]] == [r.rstrip() for r in frame]

    t.keys(".")
    t.wait(rf"frame 1/{n} ")
    t.keys("]")
    t.wait(rf"frame 101/{n} ")
    t.keys("[", ",")
    t.wait(rf"frame 0/{n} ")
    second = session.commits[1]
    t.keys("}")
    lines = t.wait(rf"frame {second.first_frame}/{n} ")
    assert any(f"commit {second.id[:7]} {second.message}" in line for line in lines)
    t.keys("{")
    t.wait(rf"frame 0/{n} ")
    t.keys("g")
    t.keys("100%", literal=True)
    t.keys("Enter")
    t.wait(rf"frame {n - 1}/{n} ")
    t.keys("g")
    t.keys("1234", literal=True)
    t.keys("Enter")
    lines = t.wait(rf"frame 1234/{n} ")
    assert [line[:160].rstrip() for line in lines[:48]] == [
        r.rstrip() for r in text_of(session.frame(1234))
    ]
    t.keys("g")
    t.keys(str(n + 5), literal=True)
    t.keys("Enter")
    t.wait(rf"frame {n + 5} is out of range")
    t.keys("Home", "/")
    t.keys("def count_words", literal=True)
    t.keys("Enter")
    hit = session.search("def count_words", 0)
    lines = t.wait(rf"frame {hit}/{n} ")
    assert any("def count_words" in line for line in lines[:48])
    t.keys("n")
    later = session.search("def count_words", hit + 1)
    t.wait(rf"frame {later}/{n} " if later is not None else "not found after")
    # play, speed up, pause: frames advance on their own
    t.keys("End", "Home", "+", "+", " ")
    time.sleep(1.0)
    t.keys(" ")
    lines = t.wait(r"❚❚ frame")
    assert status_frame(lines) > 10
    assert any("120 f/s" in line for line in lines)
    t.keys("q")
    t.wait(r"1 sessions in")
    t.keys("q")
    lines = t.wait(r"EXITED 0")
    assert not any(sid in line for line in lines), "the terminal was not restored"


def test_small_terminal_shows_a_panned_viewport(dataset, tmux):  # noqa: F811
    data, sid = dataset
    session = open_lazy(data, sid)
    t = tmux(80, 24, ["view", data, "--session", sid, "--frame", "0"])
    lines = t.wait(r"viewport 80x22 of 160x48 at row 0 col 0")
    frame = text_of(session.frame(0))
    assert [line.rstrip() for line in lines[:22]] == [r[:80].rstrip() for r in frame[:22]]
    assert all(len(line) <= 80 for line in lines)
    t.keys("l", "j")
    lines = t.wait(r"at row 4 col 8 \(panned")
    assert [line.rstrip() for line in lines[:22]] == [r[8:88].rstrip() for r in frame[4:26]]
    t.keys("f")
    t.wait(r"at row 0 col 0 \(following")
    t.keys("q")
    t.wait(r"EXITED 0")


def test_ctrl_c_restores_the_terminal(dataset, tmux):  # noqa: F811
    data, sid = dataset
    t = tmux(200, 52, ["view", data, "--session", sid])
    t.wait(r"frame 0/")
    t.keys("C-c")
    lines = t.wait(r"EXITED 130")
    assert any("interrupted" in line for line in lines)
    assert not any("frame 0/" in line for line in lines)


def test_too_small_terminal_is_one_clear_line(dataset, tmux):  # noqa: F811
    data, sid = dataset
    t = tmux(30, 5, ["view", data, "--session", sid])
    lines = t.wait(r"EXITED 2")
    assert "the viewer needs at least 40x6" in "".join(lines)  # the pane wraps at 30 columns


def test_bad_session_and_frame_fail_before_touching_the_terminal(dataset, capsys):  # noqa: F811
    data, sid = dataset
    assert cli.main(["view", data, "--session", "nope"]) == 2
    assert "no session 'nope'" in capsys.readouterr().err
    assert cli.main(["view", data, "--session", sid, "--frame", "-1"]) == 2
    assert "frame -1 is out of range" in capsys.readouterr().err
    assert cli.main(["view", data, "--session", sid]) == 2  # not a terminal under pytest
    assert "view needs a terminal" in capsys.readouterr().err


def test_damaged_chunk_while_playing_restores_the_terminal(tmp_path, tmux):
    sid = synthetic_session(tmp_path, 600, bad_chunk=1)
    t = tmux(200, 52, ["view", str(tmp_path), "--session", sid])
    t.wait(r"frame 0/600 ")
    t.keys("]", "]")
    t.wait(r"frame 200/600 ")
    t.keys("]")
    lines = t.wait(r"EXITED 2")
    assert "chunk 1: frames do not decompress" in "".join(lines)
    assert not any("frame 200/600" in line for line in lines)
