"""Every view draws colours and attributes: palette, asciicast round trip, HTML, PNG, GIF, curses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pyte
import pytest

from ghframes.render.terminal import COLS, ROWS, WIDE_STUB, Terminal
from ghframes.view import palette
from ghframes.view.export import cast_events, full_draw, render_png
from ghframes.view.palette import BLINK, BOLD, ITALIC, REVERSE, STRIKE, UNDERLINE, styles_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDE = set("世界한국어日本語")


class FakeSession:
    """What the views read from a lazy session (ghframes.store.chunks.LazySession), in memory:
    frames uint32 [T, ROWS, COLS]; fg, bg, attrs uint8 [T, ROWS, COLS]; cursor [T, 2]."""

    def __init__(self, frames, fg, bg, attrs, cursor=None, dt=None) -> None:
        self.frames, self.fg, self.bg, self.attrs = frames, fg, bg, attrs
        self.cursor = np.zeros((len(frames), 2), np.uint8) if cursor is None else cursor
        self.dt = None if dt is None else np.asarray(dt, np.uint16)
        self.id, self.repo = "fake-0000000000-c000000", "fake"
        self.actions = ["x"] * len(frames)
        self.commits, self.changes = [], []

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, t: int) -> np.ndarray:
        return self.frames[t]

    def colours(self, t: int):
        return self.fg[t], self.bg[t], self.attrs[t]

    def commit_at(self, t):  # the change_at of a session without commits or files, too
        return None

    change_at = commit_at


def blank(n: int):
    """n empty frames and their all-default colour planes."""
    zeros = np.zeros((n, ROWS, COLS), np.uint8)
    return np.full((n, ROWS, COLS), 32, np.uint32), zeros, zeros.copy(), zeros.copy()


def put(planes, t: int, y: int, x: int, text: str, fg=0, bg=0, attrs=0) -> None:
    """Write `text` into frame t at (y, x) in one style, as pyte stores it: a wide character
    in one cell and a stub in the next, of the same style."""
    frames, f, b, a = planes
    for char in text:
        for cell in (ord(char), WIDE_STUB) if char in WIDE else (ord(char),):
            frames[t, y, x], f[t, y, x], b[t, y, x], a[t, y, x] = cell, fg, bg, attrs
            x += 1


def random_session(n: int, seed: int = 0) -> FakeSession:
    """n frames of random text in random styles, each frame a few rows changed from the last."""
    rng = np.random.default_rng(seed)
    planes = blank(n)
    chars = "ab  x世한א"
    for t in range(n):
        if t:
            for p in planes:
                p[t] = p[t - 1]
        for y in rng.choice(ROWS, size=ROWS if t == 0 else 3, replace=False).tolist():
            text = "".join(rng.choice(list(chars), size=rng.integers(0, 55)))
            x = int(rng.integers(0, 40))
            for p in planes:
                p[t, y] = 32 if p is planes[0] else 0
            for word in re.findall(r"\S+|\s+", text):
                style = [int(v) for v in rng.choice([0, 1, 9, 16, 100, 230, 255], size=2)]
                style.append(int(rng.choice([0, 0, BOLD, ITALIC, UNDERLINE, REVERSE, 63])))
                put(planes, t, y, x, word, *style)
                x += sum(2 if c in WIDE else 1 for c in word)
    cursor = rng.integers(0, [ROWS, COLS], size=(n, 2)).astype(np.uint8)
    return FakeSession(*planes, cursor=cursor)


def captured(term: Terminal):
    """The terminal's screen: code points and colour planes (the renderer's own capture)."""
    return term.capture().copy(), term.fg.copy(), term.bg.copy(), term.attrs.copy()


# -- palette ------------------------------------------------------------------------------------


def test_palette_is_xterms_and_pytes():
    table = palette.XTERM_256
    assert [palette.hex_of(c) for c in table] == list(pyte.graphics.FG_BG_256)
    assert palette.hex_of(table[16]) == "000000" and palette.hex_of(table[196]) == "ff0000"
    assert palette.hex_of(table[232]) == "080808" and palette.hex_of(table[255]) == "eeeeee"
    assert palette.hex_of(table[1]) == "cd0000" and palette.hex_of(table[12]) == "5c5cff"


def test_rgb_planes_resolve_defaults_and_reverse_and_never_brighten_bold():
    fg = np.array([[0, 9, 0, 9, 1]], np.uint8)
    bg = np.array([[0, 0, 0, 4, 0]], np.uint8)
    attrs = np.array([[0, 0, REVERSE, REVERSE, BOLD]], np.uint8)
    front, back = palette.rgb_planes(fg, bg, attrs)
    assert front.shape == (1, 5, 3) and front.dtype == np.uint8
    f, b = palette.DEFAULT_FG, palette.DEFAULT_BG
    assert [tuple(c) for c in front[0]] == [f, (255, 0, 0), b, (0, 0, 238), (205, 0, 0)]
    assert [tuple(c) for c in back[0]] == [b, b, f, (255, 0, 0), b]


def test_indexed_palette_holds_every_colour_exactly():
    pal, fg_slot, bg_slot, cursor_slot = palette.indexed_palette()
    values = np.arange(256)
    front, back = palette.rgb_planes(values.astype(np.uint8), values.astype(np.uint8), values * 0)
    np.testing.assert_array_equal(pal[fg_slot], front)
    np.testing.assert_array_equal(pal[bg_slot], back)
    assert tuple(pal[cursor_slot]) == palette.CURSOR


def test_nearest_terminal_colours():
    assert palette.nearest_of(256)[[0, 9, 16, 196]].tolist() == [-1, 9, 16, 196]
    sixteen = palette.nearest_of(16)
    assert sixteen[[0, 3, 15, 16, 196, 231, 244]].tolist() == [-1, 3, 15, 0, 9, 15, 8]
    eight = palette.nearest_of(8)
    assert eight[[9, 15, 196, 16, 21, 244, 240, 8]].tolist() == [1, 7, 1, 0, 4, 7, 0, 7]
    assert eight.max() < 8


def test_sgr_takes_a_pyte_pen_to_every_style():
    styles = [(0, 0, 0), (9, 0, BOLD), (9, 4, BOLD | ITALIC), (0, 4, 63), (16, 0, 0), (255, 230, 8)]
    for old in styles:
        for new in styles:
            term = Terminal()
            term.feed("\x1b[0m" + palette.sgr((0, 0, 0), old) + palette.sgr(old, new) + "x")
            _, fg, bg, attrs = captured(term)
            assert (fg[0, 0], bg[0, 0], attrs[0, 0]) == new, (old, new)
    assert palette.sgr((9, 4, 1), (9, 4, 1)) == ""
    assert palette.sgr((9, 4, 1), (0, 0, 0)) == "\x1b[0m"
    assert palette.sgr((0, 0, 0), (0, 0, BOLD)) == "\x1b[1m"


# -- asciicast ----------------------------------------------------------------------------------


def test_cast_round_trip_reproduces_characters_colours_and_attributes():
    session = random_session(40)
    assert (session.frames == WIDE_STUB).any() and (session.attrs & REVERSE).any()
    term = Terminal()
    outputs = [e for e in cast_events(session, 0, len(session), cps=10) if e[1] == "o"]
    assert len(outputs) == len(session)
    for t, (_, _, data) in enumerate(outputs):
        term.feed(data)
        codes, fg, bg, attrs = captured(term)
        np.testing.assert_array_equal(codes, session.frames[t], err_msg=f"frame {t}")
        np.testing.assert_array_equal(fg, session.fg[t], err_msg=f"fg {t}")
        np.testing.assert_array_equal(bg, session.bg[t], err_msg=f"bg {t}")
        np.testing.assert_array_equal(attrs, session.attrs[t], err_msg=f"attrs {t}")
        assert term.cursor == tuple(session.cursor[t])
    assert term.unknown_sequences == 0


def drawn_cells(data: str) -> str:
    """What an output event writes into cells: its text less the exporter's own sequences."""
    return re.sub(r"\x1b\[(\?7h|[0-9;]*[mHJ])", "", data)


def test_diff_events_rewrite_only_cells_whose_character_or_style_changed():
    planes = blank(4)
    put(planes, 0, 3, 0, "def count_words(text):", 4, 0, BOLD)
    put(planes, 0, 30, 10, "left" + " " * 40 + "right")
    frames, fg, _, attrs = planes
    for t in (1, 2, 3):
        for p in planes:
            p[t] = p[t - 1]
        if t == 2:
            fg[t, 30, 10] = 9  # only the colour of "l" changes
        if t == 3:  # "e" turns bold, "r" far to its right turns red "R", "c" becomes "C"
            attrs[t, 30, 11] = BOLD
            frames[t, 30, 54], fg[t, 30, 54] = ord("R"), 196
            frames[t, 3, 4] = ord("C")
    events = [e[2] for e in cast_events(FakeSession(*planes), 0, 4, cps=10) if e[1] == "o"]
    assert drawn_cells(events[0]).replace(" ", "") == "defcount_words(text):leftright"
    assert events[1] == "\x1b[1;1H"  # nothing changed: the cursor is placed, nothing drawn
    assert drawn_cells(events[2]) == "l" and "38;5;9" in events[2]
    assert drawn_cells(events[3]) == "Ce" + "R" and "38;5;196" in events[3]


def test_hostile_cells_in_colour_are_written_as_data():
    """A shard is a file: cells holding ESC, BEL, C1 CSI or a lone surrogate, in colours,
    are written as U+FFFD; the only escape sequences are the exporter's own SGR and moves."""
    planes = blank(2)
    put(planes, 0, 0, 0, "\x1b]0;pwned\x07\x1b[2J", 9, 4, BOLD)
    put(planes, 1, 0, 0, "\x9b6n\x1b]52;c;eA==\x07 \ud800 ok", 196, 0, UNDERLINE)
    events = [e for e in cast_events(FakeSession(*planes), 0, 2, cps=10) if e[1] == "o"]
    for _, _, data in events:
        cells = drawn_cells(data)
        assert "\x1b" not in cells and all(c.isprintable() or c == "\ufffd" for c in cells)
        ours = re.findall(r"\x1b\[[^A-Za-z]*[A-Za-z]", data)
        assert all(re.fullmatch(r"\x1b\[(\?7h|[0-9;]*[mHJ])", s) for s in ours), ours
    assert "\ufffd]0;pwned\ufffd\ufffd[2J" in drawn_cells(events[0][2])
    term = Terminal()
    for event in events:
        term.feed(event[2])
    assert term.display()[0].startswith("\ufffd6n\ufffd]52;c;eA==\ufffd \ufffd ok")


def test_full_draw_keeps_trailing_blanks_that_have_a_background():
    planes = blank(1)
    put(planes, 0, 47, 0, " " * COLS, 0, 0, REVERSE)  # a status bar in reverse video
    put(planes, 0, 46, 150, "   ", 0, 4)
    data, _ = full_draw(planes[0][0], (0, 0), styles_of(*(p[0] for p in planes[1:])))
    term = Terminal()
    term.feed(data)
    _, _, bg, attrs = captured(term)
    assert (attrs[47] == REVERSE).all() and (bg[46, 150:153] == 4).all()


# -- PNG ----------------------------------------------------------------------------------------


def cell(image: np.ndarray, y: int, x: int, cw: int, ch: int) -> np.ndarray:
    return image[y * ch : (y + 1) * ch, x * cw : (x + 1) * cw]


def test_png_draws_colours_and_attributes(tmp_path):
    from PIL import Image

    planes = blank(1)
    put(planes, 0, 0, 0, "MMMM", 9, 4)  # red on blue
    put(planes, 0, 1, 0, "MMMM", 0, 0, REVERSE)  # default colours reversed
    put(planes, 0, 2, 0, "MMMM", 0, 0, BOLD)
    put(planes, 0, 3, 0, "MMMM")
    put(planes, 0, 4, 0, "    ", 0, 0, UNDERLINE)
    put(planes, 0, 5, 0, "    ", 0, 0, STRIKE)
    put(planes, 0, 6, 0, "    ", 0, 22)
    frames, fg, bg, attrs = (p[0] for p in planes)
    out = tmp_path / "c.png"
    cw, ch = render_png(frames, (40, 40), str(out), (fg, bg, attrs))
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    colours = lambda y, x: {tuple(c) for c in cell(image, y, x, cw, ch).reshape(-1, 3)}  # noqa: E731
    assert {(255, 0, 0), (0, 0, 238)} <= colours(0, 1)
    assert palette.DEFAULT_FG in colours(1, 1) and palette.DEFAULT_BG in colours(1, 1)
    assert colours(6, 0) == {(0, 95, 0)} and colours(9, 9) == {palette.DEFAULT_BG}
    ink = lambda y: (cell(image, y, 1, cw, ch).sum(axis=2) > 300).sum()  # noqa: E731
    assert ink(2) > ink(3) > 0  # bold is heavier
    line = lambda y: np.flatnonzero((cell(image, y, 1, cw, ch).sum(axis=2) > 300).all(axis=1))  # noqa: E731
    under, strike = line(4), line(5)  # each a line across a blank cell, at its own height
    assert under.size and strike.size and strike.max() < under.min()
    assert colours(40, 40) == {palette.CURSOR}  # the cursor cell, blank


def test_png_draws_hangul_and_hebrew_from_a_covering_font(monkeypatch, caplog):
    from ghframes.view import raster

    fonts = raster.Fonts(14)
    if any(fonts.face(ord(c), 0)[0] is fonts.faces[0] for c in "한ש"):
        pytest.skip(
            f"no font of {raster.FALLBACK_FONTS} covers 한 and ש (apt-get install -y fonts-unifont)"
        )
    planes = blank(1)
    put(planes, 0, 0, 0, "한 ש \U0010fffd")  # U+10FFFD: no font has it, drawn as the box
    codes, _, _, attrs = (p[0] for p in planes)
    with_fallback = raster.Raster(14).coverage(codes, attrs)
    caplog.clear()
    monkeypatch.setattr(raster, "FALLBACK_FONTS", ())
    monkeypatch.setattr(raster, "_WARNED", [False])
    with caplog.at_level("WARNING", logger="ghframes.view.raster"):
        boxes = raster.Raster(14).coverage(codes, attrs)
    box = boxes[0, :, 5]  # DejaVu Sans Mono's box for a character it lacks
    assert box.any() and np.array_equal(with_fallback[0, :, 5], box)
    for x in (0, 3):  # 한 (its left cell), ש: boxes without a fallback font, glyphs with one
        assert np.array_equal(boxes[0, :, x], box), x
        glyph = with_fallback[0, :, x]
        assert glyph.any() and not np.array_equal(glyph, box), x
    assert with_fallback[0, :, 1].any()  # 한's right half
    lines = [r for r in caplog.records if r.name == "ghframes.view.raster"]
    assert len(lines) == 1 and "fonts-unifont" in lines[0].getMessage()


# -- GIF ----------------------------------------------------------------------------------------


def read_gif(path):
    from PIL import Image

    image = Image.open(path)
    frames, durations = [], []
    for k in range(image.n_frames):
        image.seek(k)
        durations.append(image.info["duration"])
        frames.append(np.asarray(image.convert("RGB")))
    return frames, durations


def gif_session(dt) -> FakeSession:
    """Frame t shows "t" in colour t + 1 on row 0; frames 3 and 4 repeat frame 2."""
    planes = blank(len(dt))
    for t in range(len(dt)):
        k = min(t, 2) if t < 5 else t
        put(planes, t, 0, 0, f"frame{k}", k + 1, 0, BOLD if k % 2 else 0)
        put(planes, t, 2, 10, "  ", 0, 196)  # a red block
    return FakeSession(*planes, dt=dt)


def test_gif_frames_durations_and_colours(tmp_path):
    from ghframes.view.export import _atomic
    from ghframes.view.gif import write_gif
    from ghframes.view.raster import Raster

    dt = [100, 250, 40, 60, 5000, 300]
    session = gif_session(dt)
    out = tmp_path / "a.gif"
    count = write_gif(session, str(out), 0, 6, None, 2.0, _atomic)
    frames, durations = read_gif(out)
    # frames 2, 3, 4 look the same: one image; frame 4's pause is cut to 2 s
    assert count == len(frames) == 4
    assert durations == [100, 250, 40 + 60 + 2000, 300]
    cw, ch = Raster(14).cw, Raster(14).ch
    assert frames[0].shape == (ROWS * ch, COLS * cw, 3)
    for image in frames:  # a blank cell in red: exactly red, nothing dithered
        assert {tuple(c) for c in cell(image, 2, 10, cw, ch).reshape(-1, 3)} == {(255, 0, 0)}
    # the text of frame k in xterm colour k + 1 (1: cd0000, 2: 00cd00, 3: cdcd00), exactly
    for image, k in zip(frames, (0, 1, 2, 5), strict=True):
        ink = {tuple(c) for c in cell(image, 0, 2, cw, ch).reshape(-1, 3)}  # "a" of "frame"
        assert ink == {tuple(palette.XTERM_256[k + 1]), palette.DEFAULT_BG}, (k, ink)
    # --cps: every frame 1/cps s; 10 ms frames fall on the 20 ms grid, one of each two shown
    assert write_gif(session, str(out), 0, 6, 5.0, 2.0, _atomic) == 4
    assert read_gif(out)[1] == [200, 200, 600, 200]
    blink = gif_session([100] * 6)  # frames 0 and 1 differ only in blinking: one image
    blink.frames[1], blink.fg[1], blink.attrs[1] = blink.frames[0], blink.fg[0], BLINK
    assert write_gif(blink, str(out), 0, 6, None, 2.0, _atomic) == 3
    assert read_gif(out)[1] == [200, 300, 100]
    fast = gif_session([10] * 6)
    write_gif(fast, str(out), 0, 6, None, 0, _atomic)
    assert sum(read_gif(out)[1]) == 60 and min(read_gif(out)[1]) >= 20


# -- HTML ---------------------------------------------------------------------------------------


def html_planes():
    planes = blank(2)
    put(planes, 0, 0, 0, "plain words")
    put(planes, 0, 1, 0, "on blue", 15, 4, BOLD)
    put(planes, 0, 2, 0, "reversed", 0, 0, REVERSE)
    put(planes, 0, 3, 0, "<!--<script>& 한국어", 2, 0, UNDERLINE | ITALIC | STRIKE)
    for p in planes:
        p[1] = p[0]
    planes[2][1, 0, :5] = 196  # frame 1: only the background of "plain" changes
    return planes


def test_html_data_carries_style_runs_and_a_style_table():
    from ghframes.view.player_html import KEYFRAME, player_data

    planes = html_planes()
    data = player_data(FakeSession(*planes, dt=[100, 100]), 0, 2)
    styles = data["styles"]
    assert styles[0] == ["dcdcdc", "181818", 0]
    assert ["ffffff", "0000ee", BOLD] in styles and ["181818", "dcdcdc", 0] in styles
    rows, runs = data["frames"][0]
    assert len(rows) == len(runs) == ROWS and runs[5] == []
    blue = styles.index(["ffffff", "0000ee", BOLD])
    assert runs[1] == [blue, 7]  # "on blue", then default to the row's end (no run needed)
    red = styles.index(["dcdcdc", "ff0000", 0])
    assert data["frames"][1] == [[0, 0, "plain", [red, 5]]]  # the change: its cells and runs
    # a monochrome session: one style, empty runs, diffs without runs
    mono = blank(KEYFRAME + 2)
    put(mono, 1, 0, 0, "x")
    plain = player_data(FakeSession(*mono), 0, KEYFRAME + 2)
    assert plain["styles"] == [styles[0]] and plain["frames"][1] == [[0, 0, "x"]]
    assert plain["frames"][KEYFRAME][1] == [[]] * ROWS


def test_html_player_draws_colours_in_chromium(tmp_path):
    from PIL import Image
    from test_export import browse, chromium, dom_state

    from ghframes.view.export import _atomic
    from ghframes.view.player_html import write_html

    chromium()
    out = tmp_path / "c.html"
    write_html(FakeSession(*html_planes(), dt=[100, 100]), str(out), 0, 2, None, _atomic)
    data = out.read_text().split('<script id="data" type="application/json">', 1)[1]
    assert not set("<>&") & set(data.split("</script>")[0])
    dom = browse(out, "frame=0", "--dump-dom")
    screen, _, _ = dom_state(dom)
    assert screen[3].startswith("<!--<script>& 한국어")
    assert re.search(r'<span class="s\d+">on blue</span>', dom)
    shots = {}
    for t in (0, 1):
        shot = tmp_path / f"{t}.png"
        browse(out, f"frame={t}", f"--screenshot={shot}", "--window-size=1300,400")
        image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
        shots[t] = {c: int((image == c).all(axis=2).sum()) for c in [(0, 0, 238), (255, 0, 0)]}
        shots[t]["reverse"] = int((image == palette.DEFAULT_FG).all(axis=2).sum())
    assert shots[0][(0, 0, 238)] > 200 and shots[0]["reverse"] > 200  # blue; reverse video
    assert shots[0][(255, 0, 0)] < 50 < 200 < shots[1][(255, 0, 0)]  # the red background


# -- terminal viewer ----------------------------------------------------------------------------


def shard(data, planes) -> str:
    """Write DATA/frames with one session of these frames and colour planes (one chunk)."""
    from ghframes.store.codec import encode_chunk
    from ghframes.store.frames import write_one_session_dataset
    from ghframes.store.planes import encode_plane

    frames, *colours = planes
    chunk = [(len(frames), *encode_chunk(frames))]
    blobs = [tuple(encode_plane(p) for p in colours)]
    return write_one_session_dataset(str(data), "colour", chunk, colours=blobs)


def viewer_pane(tmp_path, term: str, planes) -> str:
    """`ghframes view` of a shard holding `planes`, in a tmux pane whose TERM is `term`: the
    pane's first screen, with its SGR sequences (capture-pane -e)."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install -y tmux)")
    sid = shard(tmp_path, planes)
    sock = f"gfcolour{os.getpid()}{term}"
    env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8")
    view = f"'{sys.executable}' -m ghframes view '{tmp_path}' --session {sid}"
    command = f"cd '{ROOT}' && TERM={term} {view}; echo EXITED $?; sleep 30"
    subprocess.run(
        ["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "52",
         command],
        check=True,
        env=env,
    )  # fmt: skip
    try:
        deadline, pane = time.time() + 15, ""
        while time.time() < deadline and "frame 0/" not in pane:
            time.sleep(0.2)
            pane = subprocess.run(
                ["tmux", "-L", sock, "capture-pane", "-e", "-p"], capture_output=True, text=True
            ).stdout
        assert "frame 0/" in pane, pane
        subprocess.run(["tmux", "-L", sock, "send-keys", "q"], check=True)
        return pane
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


def viewer_planes():
    planes = blank(2)
    put(planes, 0, 1, 0, "cube red", 196, 0)
    put(planes, 0, 2, 0, "on blue", 0, 4, BOLD)
    put(planes, 0, 3, 0, "grey ramp", 244, 0, UNDERLINE)
    put(planes, 0, 4, 0, "plain text")
    # more colour pairs than curses has (255): rows 6 and 7 hold 320 more; what does not fit
    # shows in the default colours, and the rows above keep theirs
    frames, fg, bg, _ = planes
    frames[0, 6:8] = ord("#")
    bg[0, 6] = np.arange(16, 16 + COLS)
    fg[0, 7], bg[0, 7] = np.arange(1, 1 + COLS), 4
    return planes


def sgr_before(pane: str, text: str) -> set[str]:
    """The SGR parameters written since the last reset where `text` starts on the pane."""
    line = next(line for line in pane.split("\n") if text in line)
    state: set[str] = set()
    for seq in re.findall(r"\x1b\[([0-9;]*)m", line[: line.index(text)]):
        params = seq.split(";")
        state = set(params[1:]) if params[0] in ("0", "") else state | set(params)
    return state


@pytest.mark.parametrize(
    ("term", "red", "blue", "grey"),
    [
        ("xterm-256color", {"38", "5", "196"}, {"1", "44"}, {"4", "38", "5", "244"}),
        ("xterm", {"31"}, {"1", "44"}, {"4", "37"}),  # 8 colours: the nearest of them
        ("vt100", set(), {"1"}, {"4"}),  # no colours: attributes only
    ],
)
def test_viewer_draws_colours_in_the_terminal(tmp_path, term, red, blue, grey):
    pane = viewer_pane(tmp_path, term, viewer_planes())
    assert red <= sgr_before(pane, "cube red"), pane
    assert blue <= sgr_before(pane, "on blue")
    assert grey <= sgr_before(pane, "grey ramp")
    assert not {"31", "38", "44"} & sgr_before(pane, "plain text")
    if term == "vt100":  # no colour is set anywhere (39 and 49 are tmux's resets)
        params = {p for seq in re.findall(r"\x1b\[([0-9;]*)m", pane) for p in seq.split(";")}
        assert not params & {str(n) for n in [*range(30, 39), *range(40, 49), *range(90, 108)]}
