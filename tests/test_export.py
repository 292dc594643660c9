"""Exports: asciicast round trip through pyte and asciinema, PNG, HTML in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pyte
import pytest

from ghframes import cli
from ghframes.render.terminal import COLS, ROWS
from ghframes.store.chunks import open_lazy
from ghframes.store.codec import encode_chunk
from ghframes.store.frames import open_dataset, write_one_session_dataset
from ghframes.view.palette import DEFAULT_BG, rgb_planes

_DATASET: dict = {}  # shared with test_viewer, which imports this fixture


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, sample_repo, ray_local):
    """The embedded sample repository crawled and rendered through the command line."""
    if "data" in _DATASET:
        return _DATASET["data"]
    data = tmp_path_factory.mktemp("viewdata")
    assert cli.main(["crawl", str(sample_repo), "--out", str(data), "--no-progress"]) == 0
    assert cli.main(["render", str(data), "--no-progress"]) == 0
    (info,) = open_dataset(str(data)).sessions()
    _DATASET["data"] = (str(data), info.id)
    return _DATASET["data"]


def screen_codes(screen: pyte.Screen) -> np.ndarray:
    codes = np.full((ROWS, COLS), 32, dtype=np.uint32)
    for y, row in screen.buffer.items():
        for x, char in row.items():
            if x < COLS and y < ROWS:
                codes[y, x] = ord(char.data[0]) if char.data else 0
    return codes


def read_cast(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def test_cast_round_trip_reproduces_every_frame(dataset, tmp_path):
    """Characters, colours, attributes and the cursor of every frame, fed to a fresh terminal
    (the renderer's own capture: pyte's colours read back as stored values)."""
    from ghframes.render.terminal import Terminal

    data, sid = dataset
    out = tmp_path / "s.cast"
    args = ["export", data, "--session", sid, "--format", "cast", "-o", str(out)]
    assert cli.main([*args, "--cps", "20"]) == 0
    header, events = read_cast(out)
    assert header["version"] == 2 and header["width"] == 160 and header["height"] == 48
    session = open_dataset(data).session(sid)
    lazy = open_lazy(data, sid)
    outputs = [e for e in events if e[1] == "o"]
    assert len(outputs) == len(session.frames)
    assert any((session.frames == 0).any(axis=(1, 2))), "sample should exercise wide characters"
    assert session.fg.any() and session.attrs.any(), "sample should exercise colour"
    term = Terminal()
    for t, (when, _, data_) in enumerate(outputs):
        assert when == pytest.approx(t / 20)
        term.feed(data_)
        np.testing.assert_array_equal(term.capture(), session.frames[t], err_msg=f"frame {t}")
        for name, plane in zip(("fg", "bg", "attrs"), lazy.colours(t), strict=True):
            np.testing.assert_array_equal(getattr(term, name), plane, err_msg=f"{name} {t}")
        assert term.cursor == tuple(session.cursor[t])
    assert term.unknown_sequences == 0
    # one marker per commit, at its first frame, labelled with the commit message
    markers = [e for e in events if e[1] == "m"]
    assert [m[0] for m in markers] == [pytest.approx(f / 20) for _, _, f in session.commits]
    assert markers[0][2] == "Initial commit"
    assert all(m[2] for m in markers)


def test_cast_range_starts_with_a_full_frame(dataset, tmp_path):
    data, sid = dataset
    out = tmp_path / "r.cast"
    argv = ["export", data, "--session", sid, "--format", "cast", "-o", str(out)]
    assert cli.main([*argv, "--from", "1000", "--to", "1200"]) == 0
    _, events = read_cast(out)
    outputs = [e for e in events if e[1] == "o"]
    assert len(outputs) == 200 and outputs[0][0] == 0
    session = open_dataset(data).session(sid)
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.Stream(screen)
    for k, event in enumerate(outputs):
        stream.feed(event[2])
        np.testing.assert_array_equal(screen_codes(screen), session.frames[1000 + k])


def test_asciinema_accepts_the_cast(dataset, tmp_path):
    asciinema = shutil.which("asciinema") or os.path.join(
        os.path.dirname(sys.executable), "asciinema"
    )
    if not os.path.exists(asciinema):
        pytest.skip("asciinema is not installed (pip install asciinema)")
    data, sid = dataset
    out = tmp_path / "a.cast"
    argv = ["export", data, "--session", sid, "--format", "cast", "-o", str(out)]
    assert cli.main([*argv, "--to", "400", "--cps", "1000"]) == 0
    done = subprocess.run([asciinema, "cat", str(out)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    _, events = read_cast(out)
    expected = "".join(e[2] for e in events if e[1] == "o")
    assert done.stdout.decode() == expected  # every output event, no marker text
    # `asciinema play` needs a terminal: run it in a detached tmux pane and read the screen
    if shutil.which("tmux") is None:
        return
    sock = f"gfcast{os.getpid()}"
    try:
        subprocess.run(
            [
                "tmux",
                "-L",
                sock,
                "new-session",
                "-d",
                "-x",
                "170",
                "-y",
                "50",
                f"{asciinema} play -s 100 {out}; echo PLAYED $?; sleep 30",
            ],
            check=True,
            env=dict(os.environ, TERM="xterm-256color"),
        )
        deadline = time.time() + 20
        pane = ""
        while time.time() < deadline and "PLAYED" not in pane:
            time.sleep(0.3)
            pane = subprocess.run(
                ["tmux", "-L", sock, "capture-pane", "-p"], capture_output=True, text=True
            ).stdout
        assert "PLAYED 0" in pane, pane
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


def test_bad_session_and_range_are_one_line_errors(dataset, tmp_path, capsys):
    data, sid = dataset
    base = ["export", data, "--format", "cast", "-o", str(tmp_path / "x.cast")]
    assert cli.main([*base, "--session", "nope"]) == 2
    assert "no session 'nope'" in capsys.readouterr().err
    assert cli.main([*base, "--session", sid, "--from", "10", "--to", "5"]) == 2
    assert "--to 5 is out of range" in capsys.readouterr().err
    png = ["export", data, "--session", sid, "--format", "png", "-o", str(tmp_path / "x.png")]
    assert cli.main([*png, "--frame", "99999999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--frame 99999999 is out of range" in err
    assert not os.path.exists(tmp_path / "x.png") and not os.path.exists(tmp_path / "x.cast")


def test_damaged_shard_is_one_line_error(dataset, tmp_path, capsys):
    data, sid = dataset
    copy = tmp_path / "copy"
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("sample-repo", "cache"))
    info = open_dataset(str(copy)).sessions()[0]
    shard = copy / "frames" / info.shard
    shard.write_bytes(shard.read_bytes()[:200])
    argv = ["export", str(copy), "--session", sid, "--format", "cast", "-o", str(tmp_path / "d")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged shard" in err


def test_png_draws_the_frame_with_a_monospace_font(dataset, tmp_path):
    from PIL import Image

    from ghframes.view.export import render_png

    data, sid = dataset
    session = open_lazy(data, sid)
    t = session.search("def count_words", 0)
    out = tmp_path / "f.png"
    argv = ["export", data, "--session", sid, "--format", "png", "-o", str(out)]
    assert cli.main([*argv, "--frame", str(t)]) == 0
    image = np.asarray(Image.open(out).convert("RGB"))
    cw, ch = render_png(session.frame(t), session.cursor[t], str(tmp_path / "g.png"))
    assert image.shape == (ch * ROWS, cw * COLS, 3)
    frame = session.frame(t)
    _, back = rgb_planes(*session.colours(t))
    assert (back != DEFAULT_BG).any(), "the sample should exercise colour (the editor's bars)"
    for y in range(ROWS):
        for x in range(COLS):
            # ink: what differs from the cell's background (palette.rgb_planes)
            ink = (image[y * ch : (y + 1) * ch, x * cw : (x + 1) * cw] != back[y, x]).any(axis=2)
            if frame[y, x] == 32 and (y, x) != tuple(session.cursor[t]):
                assert not ink.any(), (y, x)
            elif chr(frame[y, x]).isalnum() and frame[y, x] < 128:
                assert ink.any(), (y, x, chr(frame[y, x]))


def test_gif_of_a_range_at_the_recorded_times(dataset, tmp_path, capsys):
    from PIL import Image

    from ghframes.view.gif import MIN_DELAY_CS
    from ghframes.view.palette import indexed_palette
    from ghframes.view.raster import Raster

    data, sid = dataset
    out = tmp_path / "r.gif"
    argv = ["export", data, "--session", sid, "--format", "gif", "-o", str(out)]
    assert cli.main([*argv, "--from", "100", "--to", "160"]) == 0
    assert "60 frames as an animated GIF" in capsys.readouterr().out
    session = open_lazy(data, sid)
    image = Image.open(out)
    assert 1 < image.n_frames <= 60
    durations = []
    for k in range(image.n_frames):
        image.seek(k)
        durations.append(image.info["duration"])
    held = np.minimum(session.dt[100:160].astype(int), 2000)
    assert abs(sum(durations) - held.sum()) <= 10 and min(durations) >= 10 * MIN_DELAY_CS
    # the first image is frame 100 exactly as the rasteriser draws it, in the GIF's palette
    image.seek(0)
    pal, fg, bg, cursor = indexed_palette()
    raster = Raster(14)
    expected = pal[
        raster.indexed(
            session.frame(100),
            *session.colours(100),
            session.cursor[100],
            (fg, bg, cursor),
        )
    ]
    np.testing.assert_array_equal(np.asarray(image.convert("RGB")), expected)


def synthetic_session(
    data, n_frames: int, bad_chunk: int | None = None, path: str | None = None
) -> str:
    """Write DATA/frames with one synthetic session of `n_frames` frames (frame t shows
    t % 256 on its first row); chunk `bad_chunk` gets a blob that does not decompress;
    `path`: the file the session edits from frame 0."""
    per = 256
    frames = np.full((per, ROWS, COLS), 32, dtype=np.uint32)
    for t in range(per):
        frames[t, 0, : len(str(t))] = [ord(c) for c in str(t)]
    itemsize, blob = encode_chunk(frames)
    counts = [per] * (n_frames // per) + ([n_frames % per] if n_frames % per else [])
    last_itemsize, last_blob = encode_chunk(frames[: counts[-1]])
    k = len(counts)
    blobs = [blob] * (k - 1) + [last_blob]
    if bad_chunk is not None:
        blobs[bad_chunk] = b"not zstd at all"
    itemsizes = [itemsize] * (k - 1) + [last_itemsize]
    encoded = list(zip(counts, itemsizes, blobs, strict=True))
    return write_one_session_dataset(str(data), "big", encoded, path)


def test_million_frame_session_opens_lazily(tmp_path):
    """A synthetic shard of 1,000,000 frames: opening decodes no frame; showing the last frame
    decodes one chunk. (How long that takes is measured by `make bench`.)"""
    n_frames = 1_000_000
    sid = synthetic_session(tmp_path, n_frames)
    session = open_lazy(str(tmp_path), sid)
    assert len(session) == n_frames and len(session._cache) == 0
    last = session.frame(n_frames - 1)
    assert "".join(map(chr, last[0, :4])).strip() == str((n_frames - 1) % 256)
    assert len(session._cache) == 1


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")


def browse(html_path, fragment: str, *extra: str) -> str:
    argv = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--virtual-time-budget=3000",
        *extra,
        f"file://{html_path}#{fragment}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dom_state(dom: str) -> tuple[list[str], str, str]:
    import html as htmllib
    import re

    screen = re.search(r'<pre id="screen">(.*?)</pre>', dom, re.S).group(1)
    screen = htmllib.unescape(re.sub(r"<[^>]+>", "", screen)).split("\n")
    status = htmllib.unescape(re.search(r'<div id="status">(.*?)</div>', dom, re.S).group(1))
    action = htmllib.unescape(re.search(r'<div id="action">(.*?)</div>', dom, re.S).group(1))
    return screen, status, action


def test_html_player_loads_seeks_plays_and_searches_in_chromium(dataset, tmp_path):
    from ghframes.render.terminal import text_of

    data, sid = dataset
    chromium()
    out = tmp_path / "p.html"
    argv = ["export", data, "--session", sid, "--format", "html", "-o", str(out)]
    assert cli.main(argv) == 0
    page = out.read_text()
    assert "http://" not in page and "https://" not in page and " src=" not in page
    session = open_lazy(data, sid)
    n = len(session)
    # seek: every row of the frame, the action under the screen, the status line
    for t in (0, 1234, n - 1):
        screen, status, action = dom_state(browse(out, f"frame={t}", "--dump-dom"))
        assert screen == text_of(session.frame(t)), t
        assert f"frame {t}/{n}" in status and action == f"action: {session.actions[t]}"
    # controls: +100, next commit, step back
    second = session.commits[1].first_frame
    _, status, _ = dom_state(browse(out, "keys=]", "--dump-dom"))
    assert f"frame 100/{n}" in status
    _, status, _ = dom_state(browse(out, "keys=}.,,", "--dump-dom"))
    assert f"frame {second - 1}/{n}" in status and session.commits[0].message in status
    # search
    hit = session.search("def count_words", 0)
    _, status, _ = dom_state(browse(out, "search=def count_words", "--dump-dom"))
    assert f"frame {hit}/{n}" in status
    # play: frames advance on their own
    _, status, _ = dom_state(browse(out, "play&speed=120", "--dump-dom"))
    assert int(status.split("frame ")[1].split("/")[0]) > 50
    # a screenshot shows text on exactly the rows of the screen where the frame has text
    from PIL import Image

    shot = tmp_path / "shot.png"
    browse(out, f"frame={hit}", f"--screenshot={shot}", "--window-size=1300,900")
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    black = (image == DEFAULT_BG).all(axis=2)  # the screen's background
    ys, xs = np.nonzero(black)
    # the screen's box, padding included: the run of its background down its left padding column
    top, column = ys.min(), black[:, xs.min() + 1]
    bottom = top + int(np.argmin(column[top:]))
    gray = image[top:bottom, xs.min() : xs.max() + 1].sum(axis=2)
    pad = 6
    cell_h = (bottom - top - 2 * pad) / ROWS
    rows = text_of(session.frame(hit))
    cursor_row = session.cursor[hit][0]
    for y, text in enumerate(rows):
        band = gray[int(pad + (y + 0.3) * cell_h) : int(pad + (y + 0.8) * cell_h)]
        if y != cursor_row and (not text.strip() or any(c.isalnum() for c in text)):
            assert (band > 300).any() == bool(text.strip()), (y, text)


def test_html_go_to_and_speed_from_cps(dataset, tmp_path):
    data, sid = dataset
    chromium()
    out = tmp_path / "g.html"
    argv = ["export", data, "--session", sid, "--format", "html", "-o", str(out)]
    assert cli.main([*argv, "--from", "100", "--to", "1101", "--cps", "120"]) == 0
    n = len(open_lazy(data, sid))
    _, status, _ = dom_state(browse(out, "", "--dump-dom"))
    assert status.startswith(f"paused | frame 100/{n} | 120 f/s")
    # `g` takes a frame of the session or a percentage of the exported frames
    _, status, _ = dom_state(browse(out, "goto=50%25", "--dump-dom"))
    assert f"frame 600/{n}" in status
    _, status, _ = dom_state(browse(out, "goto=1000", "--dump-dom"))
    assert f"frame 1000/{n}" in status
    _, status, _ = dom_state(browse(out, "goto=99", "--dump-dom"))
    assert f"frame 100/{n}" in status and "frame 99 is out of range (100..1100)" in status
    _, status, _ = dom_state(browse(out, "goto=abc%25", "--dump-dom"))
    assert f"frame 100/{n}" in status and 'not a frame number or percentage: "abc%"' in status


def test_cps_must_be_a_positive_number(dataset, tmp_path, capsys):
    data, sid = dataset
    for fmt in ("cast", "html", "gif"):
        for cps in ("0", "-3", "nan", "inf"):
            argv = ["export", data, "--session", sid, "--format", fmt, "-o", str(tmp_path / "x")]
            assert cli.main([*argv, "--cps", cps]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1, (fmt, cps, err)
            assert "--cps must be a positive, finite number" in err, (fmt, cps, err)
    assert not os.path.exists(tmp_path / "x")


def test_from_to_apply_to_html_and_png(dataset, tmp_path):
    data, sid = dataset
    out = tmp_path / "r.html"
    argv = ["export", data, "--session", sid, "--format", "html", "-o", str(out)]
    assert cli.main([*argv, "--from", "200", "--to", "300"]) == 0
    assert '"start":200' in out.read_text()
    png = ["export", data, "--session", sid, "--format", "png", "-o", str(tmp_path / "x.png")]
    assert cli.main([*png, "--from", "200", "--to", "300", "--frame", "300"]) == 2
    assert cli.main([*png, "--from", "200", "--to", "300"]) == 0


def test_damaged_chunk_is_one_line_error(tmp_path, capsys):
    sid = synthetic_session(tmp_path, 600, bad_chunk=1)
    argv = [
        "export",
        str(tmp_path),
        "--session",
        sid,
        "--format",
        "cast",
        "-o",
        str(tmp_path / "c"),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chunk 1: frames do not decompress" in err
    assert not os.path.exists(tmp_path / "c")


def test_html_with_script_and_comment_openers_in_files_still_plays(tmp_path):
    """File text such as `<!--<script>` or `</script>` cannot end the data element or open
    another inside it: the page plays in Chromium and shows that text as text."""
    chromium()
    hostile = ["<!--<script>alert(1)", "</script><script>x", "a & b > c \u2028 \u2029 end"]
    frames = np.full((3, ROWS, COLS), 32, dtype=np.uint32)
    for t in range(3):
        for y, text in enumerate(hostile[: t + 1]):
            frames[t, y, : len(text)] = [ord(c) for c in text]
    sid = write_one_session_dataset(str(tmp_path), "h", [(3, *encode_chunk(frames))], "<!--<s>")
    out = tmp_path / "h.html"
    argv = ["export", str(tmp_path), "--session", sid, "--format", "html", "-o", str(out)]
    assert cli.main(argv) == 0
    page = out.read_text()
    data = page.split('<script id="data" type="application/json">', 1)[1].split("</script>")[0]
    assert not set("<>&\u2028\u2029") & set(data)
    screen, status, _ = dom_state(browse(out, "frame=2", "--dump-dom"))
    assert [row.rstrip() for row in screen[:3]] == hostile
    assert "frame 2/3" in status and "file <!--<s>" in status


def test_export_to_an_existing_directory_is_one_line_and_leaves_nothing(tmp_path, capsys):
    sid = synthetic_session(tmp_path, 10)
    target = tmp_path / "out"
    target.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    for fmt in ("cast", "html", "png", "gif"):
        argv = ["export", str(tmp_path), "--session", sid, "--format", fmt, "-o", str(target)]
        assert cli.main(argv) == 2, fmt
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("ghframes: error: "), (fmt, err)
        assert "is a directory" in err.lower() or "no monospace font" in err, (fmt, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list(target.iterdir()) == []


def test_control_characters_in_a_shard_are_not_written_to_a_cast(tmp_path):
    """A shard is a file: cells holding ESC, BEL or C1 CSI are drawn as U+FFFD, so the cast's
    output events hold only the escape sequences the exporter writes itself."""
    import re

    frames = np.full((2, ROWS, COLS), 32, dtype=np.uint32)
    for t, text in enumerate(["\x1b]0;pwned\x07", "\x9b2J\x1b]52;c;eA==\x07 \ud800"]):
        frames[t, 0, : len(text)] = [ord(c) for c in text]
    sid = write_one_session_dataset(str(tmp_path), "c", [(2, *encode_chunk(frames))])
    out = tmp_path / "c.cast"
    argv = ["export", str(tmp_path), "--session", sid, "--format", "cast", "-o", str(out)]
    assert cli.main(argv) == 0
    _, events = read_cast(out)
    for _, kind, data in events:
        ours = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data)
        assert kind != "o" or all(c.isprintable() or c == "\ufffd" for c in ours), data
    drawn = [data for _, kind, data in events if kind == "o"]
    assert "\ufffd]0;pwned\ufffd" in drawn[0] and "\ufffd2J" in drawn[1]
