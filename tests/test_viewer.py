"""The terminal viewer, driven in a real terminal: tmux runs it, send-keys types, capture-pane reads."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from test_export import dataset, synthetic_session  # noqa: F401  (shared rendered sample)

from ghframes import cli
from ghframes.errors import GhframesError
from ghframes.render.terminal import COLS, ROWS, WIDE_STUB, text_of
from ghframes.store.chunks import open_lazy
from ghframes.store.codec import encode_chunk
from ghframes.store.frames import write_one_session_dataset
from ghframes.store.search import SearchCancelled, find_in_frames

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
        """Type `keys` in order (one send-keys: tmux writes them to the pane in turn); what
        they do is then awaited on the screen (`wait`), never guessed with a pause."""
        extra = ["-l"] if literal else []
        subprocess.run(["tmux", "-L", self.sock, "send-keys", *extra, *keys], check=True)

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

    def cursor(self) -> tuple[int, int]:
        """(column, row) of the terminal's cursor, in cells."""
        out = subprocess.run(
            ["tmux", "-L", self.sock, "display-message", "-p", "#{cursor_x} #{cursor_y}"],
            capture_output=True,
            text=True,
        )
        x, y = out.stdout.split()
        return int(x), int(y)

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
    t.keys("N")  # back to the previous frame showing it
    t.wait(rf"frame {hit}/{n} " if later is not None else "not found before")
    # play, speed up, pause: frames advance on their own
    t.keys("End", "Home", "+", "+", " ")
    t.wait(r"▶ frame (1[1-9]|[2-9]\d|\d{3,})/")  # playing on its own past frame 10
    t.keys(" ")
    lines = t.wait(r"❚❚ frame")
    assert status_frame(lines) > 10
    assert any("120 f/s" in line for line in lines)
    t.keys("-")
    t.wait(r"\| 60 f/s \|")
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


def test_small_terminal_viewport_follows_the_cursor(dataset, tmux):  # noqa: F811
    data, sid = dataset
    session = open_lazy(data, sid)
    far = [t for t, (y, x) in enumerate(session.cursor.tolist()) if y >= 22 and x >= 80]
    assert far, "the sample should move the cursor past row 22 and column 80"
    frame_index = far[0]
    cy, cx = session.cursor[frame_index].tolist()
    # the cursor is outside the first 80x22 view: the viewport centres on it, inside the frame
    top, left = min(cy - 11, 48 - 22), min(cx - 40, 160 - 80)
    t = tmux(80, 24, ["view", data, "--session", sid, "--frame", str(frame_index)])
    lines = t.wait(rf"viewport 80x22 of 160x48 at row {top} col {left} \(following")
    assert top <= cy < top + 22 and left <= cx < left + 80
    frame = session.frame(frame_index)[top : top + 22, left : left + 80]
    assert [line.rstrip() for line in lines[:22]] == [r.rstrip() for r in text_of(frame)]
    t.keys("q")
    t.wait(r"EXITED 0")


def test_status_line_never_garbles_on_control_or_wide_characters(tmp_path, tmux):
    # A file path (or commit message) may hold a carriage return, a tab, an escape, and more
    # wide characters than the row has cells: shown in visible notation, cut at the edge.
    path = "src/a\rb\t\x1b[31m" + "说明" * 60 + ".md"
    sid = synthetic_session(tmp_path, 600, path=path)
    for width, bottom in ((200, "? help  q quit"), (80, "viewport 80x48 of 160x48 at row 0")):
        t = tmux(width, 52, ["view", str(tmp_path), "--session", sid])
        lines = t.wait(r"frame 0/600 ")
        assert lines[50].startswith("❚❚ frame 0/600 0.0% | 30 f/s | action x | commit 0000000")
        assert lines[51].startswith(bottom) and "说" not in lines[51]  # nothing wrapped onto it
        if width == 200:
            assert "| file src/a^Mb^I^[[31m说明说明" in lines[50]
            assert lines[51].rstrip() == bottom
        t.keys("q")
        t.wait(r"EXITED 0")


def test_million_frame_session_plays_and_a_long_search_says_it_runs(tmp_path, tmux):
    sid = synthetic_session(tmp_path, 1_000_000)
    t = tmux(200, 52, ["view", str(tmp_path), "--session", sid])
    t.wait(r"frame 0/1000000 ")
    t.keys("End")
    lines = t.wait(r"frame 999999/1000000 ")
    assert lines[0][:160].rstrip() == str(999_999 % 256)
    # No frame shows "9 9", yet every chunk holds both its characters, so the search compares
    # every frame from frame 0 on (seconds), and shows how far it got meanwhile. Ctrl-C quits.
    t.keys("Home", "/")
    t.keys("9 9", literal=True)
    t.keys("Enter")
    t.wait(r"searching for '9 9' \.\.\. frame \d+/1000000 - any key stops")
    t.keys("C-c")
    lines = t.wait(r"EXITED 130")
    assert not any("frame 999999" in line for line in lines)


def test_any_key_cancels_a_long_search_and_the_view_stays(tmp_path, tmux):
    sid = synthetic_session(tmp_path, 1_000_000)
    t = tmux(200, 52, ["view", str(tmp_path), "--session", sid, "--frame", "1234"])
    t.wait(r"frame 1234/1000000 ")
    t.keys("/")
    t.keys("9 9", literal=True)
    t.keys("Enter", "Escape")  # the search takes seconds; Esc reaches it within 0.1 s
    lines = t.wait(r"search cancelled at frame \d+")
    assert status_frame(lines) == 1234
    assert lines[0][:160].rstrip() == str(1234 % 256)
    stopped = int(re.search(r"search cancelled at frame (\d+)", "\n".join(lines))[1])
    assert 1234 <= stopped < 1_000_000
    t.keys("n", "x")  # from the next frame on, and any key cancels again
    lines = t.wait(r"search cancelled at frame \d+")
    assert status_frame(lines) == 1234
    t.keys(".")  # the player goes on as before
    t.wait(r"frame 1235/1000000 ")
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


def test_help_wraps_over_lines_that_fit_the_terminal(dataset, tmux):  # noqa: F811
    from ghframes.view.viewer import HELP

    data, sid = dataset
    session = open_lazy(data, sid)
    t = tmux(80, 24, ["view", data, "--session", sid])
    t.wait(r"viewport 80x22 of 160x48")
    t.keys("?")
    lines = t.wait(r"keys \(this list closes at the next key\)")
    shown = "\n".join(lines)
    assert all(entry in shown for entry in HELP), shown  # every key, none cut off
    assert all(len(line) <= 80 for line in lines)
    top = next(y for y, line in enumerate(lines) if line.startswith("keys (this list"))
    # the list covers the bottom rows of the screen; the rows above and the status line stay
    assert 22 - top <= 6
    frame = text_of(session.frame(0))
    assert [line.rstrip() for line in lines[:top]] == [r[:80].rstrip() for r in frame[:top]]
    assert lines[22].startswith("❚❚ frame 0/")
    t.keys(".")  # the next key closes the list and acts as usual
    lines = t.wait(rf"frame 1/{len(session)} ")
    assert "keys (this list" not in "\n".join(lines)
    t.keys("q")
    t.wait(r"EXITED 0")

    # the smallest terminal the viewer runs in shows what fits and says where the rest is
    t = tmux(40, 8, ["view", data, "--session", sid])
    t.wait(r"frame 0/")
    t.keys("?")
    lines = t.wait(r"more keys in a larger terminal")
    assert "more keys in a larger terminal" in [line.rstrip() for line in lines]
    assert all(len(line) <= 40 for line in lines)
    assert lines[6].startswith("❚❚ frame 0/")
    t.keys("q")
    t.wait(r"EXITED 0")


def frames_session(data, frames: np.ndarray, per: int) -> str:
    """Write DATA/frames with one session showing `frames: uint32 [n, ROWS, COLS]`, `per`
    frames a chunk, each chunk in its narrowest dtype (as the renderer stores them)."""
    starts = list(range(0, len(frames), per))
    encoded = [encode_chunk(frames[i : i + per]) for i in starts]
    counts = [min(per, len(frames) - i) for i in starts]
    chunks = [(c, size, blob) for c, (size, blob) in zip(counts, encoded, strict=True)]
    return write_one_session_dataset(str(data), "wide", chunks)


def put(frame: np.ndarray, y: int, x: int, text: str) -> None:
    """Write `text` into `frame` at row y, column x as pyte does: a wide character in one cell
    and a stub in the next."""
    for char in text:
        frame[y, x] = ord(char)
        if char in "世界😀":
            frame[y, x + 1] = WIDE_STUB
            x += 1
        x += 1


def shows(frame: np.ndarray, text: str) -> bool:
    """What the search means, read plainly: some row, its stubs dropped, contains `text`."""
    return any(text in "".join(chr(c) for c in row if c != WIDE_STUB) for row in frame.tolist())


def sample_frames() -> np.ndarray:
    """40 frames, chunks of 7: ASCII (uint8), CJK (uint16), an emoji (uint32), traps."""
    frames = np.full((40, ROWS, COLS), 32, dtype=np.uint32)
    put(frames[3], 2, COLS - 1, "a")  # "a" ends row 2, "b" starts row 3: not "ab"
    put(frames[3], 3, 0, "b")
    put(frames[9], 5, 10, "a世界b")
    put(frames[12], 47, COLS - 4, "世界")
    frames[16, 7, 20:23] = [ord("x"), WIDE_STUB, ord("y")]  # a stub left alone: reads "xy"
    put(frames[18], 0, 0, "😀!")
    put(frames[25], 10, 100, "ab")
    put(frames[33], 20, COLS - 2, "ab")
    return frames


def test_session_search_agrees_with_reading_every_row(tmp_path):
    frames = sample_frames()
    sid = frames_session(tmp_path, frames, per=7)
    session = open_lazy(str(tmp_path), sid)
    assert [session.chunk(k).dtype.itemsize for k in range(6)] == [1, 2, 4, 1, 1, 1]
    n = len(frames)
    for text in ["ab", "a", "b", "世界", "a世界b", "界b", "xy", "😀!", "世 ", "zz", "b "]:
        for start in range(n):
            forward = next((t for t in range(start, n) if shows(frames[t], text)), None)
            backward = next((t for t in range(start, -1, -1) if shows(frames[t], text)), None)
            assert session.search(text, start) == forward, (text, start)
            assert session.search(text, start, backward=True) == backward, (text, start)
    assert session.search("ab", 0) == 25  # not frame 3, where "a" and "b" are on two rows
    assert session.search("\x00", 0) is None and session.search("a" * (COLS + 1), 0) is None


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32])
def test_find_in_frames_agrees_with_reading_every_row(dtype):
    rng = np.random.default_rng(4)
    alphabet = [ord(c) for c in "abc"] + [0x100, 0x4E16, 0x1F600]
    alphabet = [c for c in alphabet if c <= np.iinfo(dtype).max]
    for _ in range(200):
        n = int(rng.integers(1, 5))
        frames = np.full((n, ROWS, COLS), 32, dtype=dtype)
        cells = rng.integers(0, n * ROWS * COLS, size=int(rng.integers(1, 400)))
        frames.reshape(-1)[cells] = rng.choice(alphabet + [WIDE_STUB], size=len(cells))
        # row ends and starts, where a match must not cross over
        frames[:, :, -1] = rng.choice(alphabet + [32], size=(n, ROWS))
        frames[:, :, 0] = rng.choice(alphabet + [32], size=(n, ROWS))
        text = "".join(chr(c) for c in rng.choice(alphabet, size=int(rng.integers(1, 4))))
        lo = int(rng.integers(0, n))
        hi = int(rng.integers(lo, n + 1))
        needle = [ord(c) for c in text]
        hits = [t for t in range(lo, hi) if shows(frames[t], text)]
        assert find_in_frames(frames, needle, lo, hi) == (hits[0] if hits else None)
        assert find_in_frames(frames, needle, lo, hi, last=True) == (hits[-1] if hits else None)
    if dtype is not np.uint8:
        # bytes that match only across a cell boundary: 0x6141, 0x0300 hold b"\x41\x61\x00\x03"
        frames = np.full((1, ROWS, COLS), 32, dtype=dtype)
        frames[0, 0, :2] = [0x6141, 0x0300]
        assert find_in_frames(frames, [ord("a")], 0, 1) is None


def test_search_skips_chunks_whose_dtype_cannot_hold_the_needle(tmp_path):
    # chunk 1 does not decompress: a search that reads it fails loudly, one for a character
    # that its dtype (uint8) cannot hold never decodes it
    sid = synthetic_session(tmp_path, 600, bad_chunk=1)
    session = open_lazy(str(tmp_path), sid)
    assert session.search("世", 0) is None
    assert session.search("世", 599, backward=True) is None
    with pytest.raises(GhframesError, match="chunk 1: frames do not decompress"):
        session.search("zzz", 0)


def test_search_cancel_is_asked_before_each_chunk(tmp_path):
    sid = synthetic_session(tmp_path, 1000)
    session = open_lazy(str(tmp_path), sid)
    asked: list[int] = []
    assert session.search("zzz", 10, cancel=lambda t: asked.append(t) and False) is None
    assert asked == [10, 256, 512, 768]
    asked.clear()
    assert session.search("zzz", 700, backward=True, cancel=lambda t: asked.append(t)) is None
    assert asked == [700, 511, 255]
    with pytest.raises(SearchCancelled) as stop:
        session.search("zzz", 10, cancel=lambda t: t > 300)
    assert stop.value.frame == 512
    assert session.search("7", 10, cancel=lambda t: False) == 17


def test_wide_characters_in_the_prompt_and_the_search(tmp_path, tmux):
    sid = frames_session(tmp_path, sample_frames(), per=7)
    t = tmux(200, 52, ["view", str(tmp_path), "--session", sid])
    t.wait(r"frame 0/40 ")
    t.keys("/")
    t.wait(r"(?m)^search:$")
    assert t.cursor() == (len("search: "), 51)
    t.keys("a世界", literal=True)
    t.wait(r"search: a世界")
    assert t.cursor() == (len("search: ") + 5, 51)  # a: one cell, 世 and 界: two each
    t.keys("BSpace")
    t.wait(r"(?m)^search: a世$")
    assert t.cursor() == (len("search: ") + 3, 51)
    t.keys("界b", literal=True)
    t.keys("Enter")
    lines = t.wait(r"found 'a世界b' at frame 9")
    assert status_frame(lines) == 9 and "a世界b" in lines[5]
    t.keys("q")
    t.wait(r"EXITED 0")


def test_viewer_benchmark_runs_on_a_session_of_the_size_asked():
    from ghframes.bench import BENCHMARKS
    from ghframes.bench.viewer import bench_viewer

    assert "viewer" in BENCHMARKS
    rows = {r["name"]: r for r in bench_viewer(num_frames=3_000)}
    opened = rows["viewer.open_session_and_show_last_frame"]
    assert opened["value"] > 0 and opened["unit"] == "s (3,072 frames)"  # whole chunks of 256
    assert rows["viewer.search_no_match"]["value"] > 0
