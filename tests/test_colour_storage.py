"""Colour and attributes (frames schema 2.0): captured from pyte's screen, recorded, written by
the real shard writer, read by every reader, streamed into batches, checked by verify; shards of
1.x read without colour.

The truth a stored plane is compared with is the terminal's own planes, copied frame by frame
while the real renderer records a session; the truth the terminal is compared with is pyte's
buffer, cell by cell, through `palette_value` and `attrs_value`.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyte
import pytest
import torch
from test_reader import errors, rewrite, write, write_old_version

import ghframes.render.session as session_module
from ghframes.errors import GhframesError
from ghframes.realistic import realistic_history
from ghframes.render.recorder import Recorder
from ghframes.render.session import RenderOptions, render_session
from ghframes.render.terminal import (
    ATTR_BITS,
    COLS,
    ROWS,
    Terminal,
    attrs_value,
    palette_value,
)
from ghframes.store import schema, shards
from ghframes.store.chunks import open_lazy
from ghframes.store.frames import open_dataset, write_one_session_dataset
from ghframes.store.planes import PLANES, SegmentDecoder, decode_plane, encode_plane
from ghframes.store.reader import SESSION_KEY
from ghframes.training.loader import CHANNELS, FrameStream
from ghframes.verify import verify_session

# -- capture ----------------------------------------------------------------------------------


def test_palette_values_follow_the_contract():
    """0 the default; the named 30-37 / 90-97 colours 1-15 with black as 16; 38;5;n as n, 0 as
    16, and where two indices share a colour the lower one >= 1."""
    names = ["black", "red", "green", "brown", "blue", "magenta", "cyan", "white"]
    assert palette_value("default") == 0
    assert [palette_value(n) for n in names] == [16, 1, 2, 3, 4, 5, 6, 7]
    assert [palette_value("bright" + n) for n in names] == list(range(8, 16))
    assert palette_value("bfightmagenta") == 13  # pyte 0.8.2's spelling of SGR 105
    term = Terminal()
    term.feed("".join(f"\x1b[38;5;{n}m\x1b[48;5;{255 - n}mx" for n in range(COLS)))
    term.feed("\r\n" + "".join(f"\x1b[38;5;{n}mx" for n in range(COLS, 256)))
    term.feed("\r\n\x1b[0;30;47mb\x1b[91;100mr\x1b[39;49md")
    term.capture()
    hexes = pyte.graphics.FG_BG_256
    lowest = {h: next(i for i in range(1, 256) if hexes[i] == h) for h in hexes}
    fg = term.fg[0].tolist() + term.fg[1, : 256 - COLS].tolist()
    assert fg == [lowest[hexes[n]] for n in range(256)]
    assert fg[0] == 16 and fg[196] == 9 and fg[16] == 16  # ff0000 is 9 as well as 196
    assert term.bg[0].tolist() == [lowest[hexes[255 - n]] for n in range(COLS)]
    assert term.fg[2, :3].tolist() == [16, 9, 0] and term.bg[2, :3].tolist() == [7, 8, 0]
    assert not term.attrs.any()


def test_attribute_bits_follow_the_contract():
    term = Terminal()
    sgr = {"bold": 1, "italics": 3, "underscore": 4, "reverse": 7, "strikethrough": 9, "blink": 5}
    term.feed("".join(f"\x1b[{code}mx\x1b[0m" for code in sgr.values()))
    term.feed("\x1b[1;3;4;5;7;9mA\x1b[22mB\x1b[23;24;25;27;29mC")
    term.capture()
    assert [ATTR_BITS[name] for name in sgr] == [1, 2, 4, 8, 16, 32]
    assert term.attrs[0, :6].tolist() == [ATTR_BITS[name] for name in sgr]
    assert term.attrs[0, 6:9].tolist() == [63, 62, 0]
    assert attrs_value(term.screen.buffer[0][7]) == 62


def reference(term: Terminal) -> tuple[np.ndarray, ...]:
    """The screen's code points, fg, bg and attrs from pyte's buffer, cell by cell."""
    planes = np.zeros((4, ROWS, COLS), np.uint32)
    for y in range(ROWS):
        row = term.screen.buffer[y]
        for x in range(COLS):
            char = row[x]
            planes[0, y, x] = ord(char.data[0]) if char.data else 0
            planes[1, y, x] = palette_value(char.fg)
            planes[2, y, x] = palette_value(char.bg)
            planes[3, y, x] = attrs_value(char)
    return tuple(planes)


def random_output(rng: random.Random) -> str:
    """A piece of program output: styled text, moves, erases, scrolls, insertions, deletions,
    the alternate screen, saved cursors, wide characters."""
    sgr = [0, 1, 3, 4, 5, 7, 9, 22, 23, 24, 25, 27, 29, 39, 49, *range(30, 38), *range(40, 48)]
    sgr += [*range(90, 98), *range(100, 108)]
    parts = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        if kind < 0.35:
            codes = [str(rng.choice(sgr))]
            if rng.random() < 0.5:
                codes.append(f"{rng.choice([38, 48])};5;{rng.randrange(256)}")
            word = "".join(rng.choice("ab 中é=") for _ in range(rng.randint(1, 30)))
            parts.append(f"\x1b[{';'.join(codes)}m{word}")
        elif kind < 0.5:
            parts.append(f"\x1b[{rng.randint(1, ROWS)};{rng.randint(1, COLS)}H")
        elif kind < 0.6:
            parts.append(rng.choice(["\r\n", "\n" * rng.randint(1, 50), "\x1bM", "\r"]))
        elif kind < 0.8:
            parts.append(f"\x1b[{rng.randint(1, 5)}{rng.choice('@PLMX')}")
        else:
            parts.append(rng.choice(["\x1b[K", "\x1b[1K", "\x1b[2J", "\x1b7", "\x1b8"]))
            parts.append(rng.choice(["", "", "\x1b[?1049h", "\x1b[?1049l"]))
    return "".join(parts)


@pytest.mark.parametrize("seed", range(4))
def test_incremental_capture_is_the_screen(seed):
    """After any output, the captured code points and planes, brought up to date from the dirty
    rows only, are exactly the screen's; without colour, the planes stay 0."""
    rng = random.Random(seed)
    term, plain = Terminal(), Terminal(colour=False)
    for step in range(120):
        out = random_output(rng)
        term.feed(out)
        plain.feed(out)
        codes = term.capture()
        want = reference(term)
        where = f"seed {seed}, step {step}"
        assert np.array_equal(codes, want[0]), where
        for got, expected in zip((term.fg, term.bg, term.attrs), want[1:], strict=True):
            assert np.array_equal(got, expected), where
        assert np.array_equal(plain.capture(), codes) and not plain.planes.any(), where
    assert term.unknown_sequences == 0


# -- recorded, written, read ------------------------------------------------------------------


class _Truth(Recorder):
    """The real recorder, keeping a copy of the terminal's planes at each frame."""

    planes: list[np.ndarray] = []

    def frame(self) -> None:
        super().frame()
        _Truth.planes.append(self.terminal.planes.copy())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A session of the realistic history recorded by the real renderer (the editor's
    highlighting, the shell's colours), its chunks written as DATA by the real writer:
    (DATA, session id, the terminal's planes uint8 [3, T, ROWS, COLS], the chunks)."""
    _Truth.planes = []
    mp = pytest.MonkeyPatch()
    mp.setattr(session_module, "Recorder", _Truth)
    try:
        chunks, meta = render_session(
            "github.com/t/colour", realistic_history(2, 1), RenderOptions()
        )
    finally:
        mp.undo()
    truth = np.stack(_Truth.planes, axis=1)
    assert truth.shape[1] == meta["num_frames"] > 600
    assert truth[0].any() and truth[2].any()  # the editor colours text; its bars are reverse
    data = tmp_path_factory.mktemp("colour")
    encoded = list(
        zip(chunks["num_frames"], chunks["frame_itemsize"], chunks["frames"], strict=True)
    )
    colours = list(zip(*(chunks[name] for name in PLANES), strict=True))
    sid = write_one_session_dataset(str(data), "c", encoded, colours=colours)
    return str(data), sid, truth, chunks


def test_every_reader_gives_the_terminals_colours(recorded):
    data, sid, truth, _ = recorded
    session = open_dataset(data).session(sid)
    for name, plane in zip(PLANES, truth, strict=True):
        got = getattr(session, name)
        assert got.dtype == np.uint8 and got.shape == plane.shape and np.array_equal(got, plane)
    lazy = open_lazy(data, sid)
    assert lazy.has_colour
    for t in (0, 1, 255, 256, 300, len(lazy) - 1):
        for got, plane in zip(lazy.colours(t), truth, strict=True):
            assert got.shape == (ROWS, COLS) and np.array_equal(got, plane[t])
    with pytest.raises(GhframesError, match="out of range"):
        lazy.colours(len(lazy))
    (info,) = open_dataset(data).sessions()
    assert verify_session(open_dataset(data), info, {"repos": {"c": {"shards": []}}}) == []


def check_batches(batches, truth) -> int:
    """Every real frame of every batch holds the terminal's planes of its (session, t); padding
    is 0. Returns the frames seen."""
    seen = 0
    for batch in batches:
        mask = batch["mask"].numpy()
        for name, plane in zip(PLANES, truth, strict=True):
            values = batch[name].numpy()
            assert values.dtype == np.uint8 and values.shape[2:] == (ROWS, COLS)
            assert np.array_equal(values[mask], plane[batch["t"].numpy()[mask]])
            assert not values[~mask].any()
        seen += int(mask.sum())
    return seen


@pytest.mark.parametrize(("mode", "T"), [("stream", 100), ("stream", 160), ("window", 300)])
def test_batches_hold_the_colours_of_their_frames(recorded, mode, T):
    """Windows of the planes are aligned exactly as the characters' (T inside a segment, across
    segments, past a chunk), the default channels of a 2.0 dataset are all four."""
    data, _, truth, _ = recorded
    ds = FrameStream(data, 2, T, mode, eval_fraction=0.0)
    assert ds.channels == CHANNELS == ("chars", "fg", "bg", "attrs")
    seen = check_batches(list(ds), truth)
    assert seen == (truth.shape[1] if mode == "stream" else truth.shape[1] // T * T)


def test_worker_batches_and_resumed_batches_hold_the_same_colours(recorded):
    """Shared-memory worker slots carry the planes; a resumed stream continues exactly."""
    data, _, truth, _ = recorded
    ds = FrameStream(data, 2, 64, "stream", eval_fraction=0.0)
    here = [{k: v.clone() for k, v in b.items()} for b in ds]
    ds.set_epoch(0)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    there = [{k: v.clone() for k, v in b.items()} for b in loader]
    assert len(here) == len(there) > 3
    for a, b in zip(here, there, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    check_batches(there, truth)
    first = FrameStream(data, 2, 64, "stream", eval_fraction=0.0)
    it = iter(first)
    for _ in range(3):
        next(it)
    resumed = FrameStream(data, 2, 64, "stream", eval_fraction=0.0)
    resumed.load_state_dict(first.state_dict())
    for a, b in zip(here[3:], resumed, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in PLANES)


def test_characters_alone_read_and_decode_no_colour(recorded, monkeypatch):
    data, _, _, _ = recorded
    decoded = []
    rows = SegmentDecoder.rows

    def spy(self, src, n, itemsize, where, name):
        decoded.append(name)
        return rows(self, src, n, itemsize, where, name)

    monkeypatch.setattr(SegmentDecoder, "rows", spy)
    chars = FrameStream(data, 2, 160, "stream", eval_fraction=0.0, channels=("chars",))
    got = list(chars)
    assert decoded and set(decoded) == {"frames"}
    assert all(name not in shard.columns for shard in chars._shards.values() for name in PLANES)
    assert "fg" not in got[0] and got[0]["frames"].shape == (2, 160, ROWS, COLS)
    every = list(FrameStream(data, 2, 160, "stream", eval_fraction=0.0))
    assert {"fg", "attrs"} <= set(decoded)  # bg: every value 0, empty values, nothing to decode
    for a, b in zip(got, every, strict=True):
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["mask"], b["mask"])


@pytest.mark.parametrize(
    "channels, said",
    [
        (("fg",), "channels must name 'chars' and each channel once"),
        (("chars", "colour"), "unknown channel 'colour'"),
        (("chars", "fg", "fg"), "channels must name 'chars' and each channel once"),
    ],
)
def test_channels_are_checked(recorded, channels, said):
    with pytest.raises(GhframesError, match=f"^loader: {said} in .*; valid channels: chars, fg"):
        FrameStream(recorded[0], 1, 8, channels=channels)


def test_output_without_colour_stores_empty_planes():
    """A chunk whose planes are all 0 (output with no SGR, as `--no-color` draws) stores each as
    an empty value; one styled cell gives that plane, alone, its rows."""
    recorder = Recorder()
    recorder.terminal.feed("dev@ghframes:~$ ")
    recorder.frame()
    for t in range(300):
        recorder.act("x", "x" if t != 290 else "\x1b[1mx\x1b[0m", 100)
    recorder.act("<Enter>", None, 100)
    chunks = recorder.finish()
    assert chunks["num_frames"] == [256, 45]
    assert chunks["fg"] == chunks["bg"] == [b"", b""] and chunks["attrs"][0] == b""
    attrs = decode_plane(chunks["attrs"][1], 45)
    # the prompt and 290 cells before it: row 1, column 146; shown from frame 291 on
    assert attrs[291 - 256 :, 1, 146].tolist() == [1] * 10 and attrs.sum() == 10


# -- older shards, damage ---------------------------------------------------------------------


def test_a_1_3_shard_reads_without_colour_and_says_so_once(tmp_path, caplog):
    sid, path = write(tmp_path)
    write_old_version(path, "1.3")
    with caplog.at_level(logging.WARNING, logger="ghframes"):
        session = open_dataset(str(tmp_path)).session(sid)
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        f"{path}: no colour in this shard (frames schema 1.3 < 2.0): fg, bg and attrs read as 0"
    ]
    assert session.dt is not None and list(session.frames[:, 0, 0]) == [t % 251 for t in range(612)]
    assert all(getattr(session, n).shape == (612, ROWS, COLS) for n in PLANES)
    assert not (session.fg.any() or session.bg.any() or session.attrs.any())
    lazy = open_lazy(str(tmp_path), sid)
    assert not lazy.has_colour and not any(p.any() for p in lazy.colours(300))
    ds = FrameStream(str(tmp_path), 1, 100, "window", eval_fraction=0.0)
    assert ds.channels == ("chars",) and "fg" not in next(iter(ds))
    every = FrameStream(str(tmp_path), 1, 100, "window", eval_fraction=0.0, channels=CHANNELS)
    batch = next(iter(every))
    assert batch["mask"].all() and not any(batch[n].any() for n in PLANES)


def test_a_mixed_dataset_gives_every_batch_the_same_keys(recorded, tmp_path):
    """A 2.0 dataset that lists a 1.3 shard: all four channels by default; the 1.3 session's
    planes are 0, the 2.0 session's its own."""
    data, sid, truth, _ = recorded
    old_sid, old_path = write(tmp_path / "old")
    write_old_version(old_path, "1.3")
    mixed = tmp_path / "mixed"
    fs, root = shards.filesystem(str(data))
    manifest = shards.read_json(fs, f"{root}/frames/{shards.MANIFEST}")
    old = shards.read_json(fs, f"{tmp_path}/old/frames/{shards.MANIFEST}")
    (mixed / "frames").mkdir(parents=True)
    for shard in (Path(data) / "frames" / "c.parquet", Path(old_path)):
        (mixed / "frames" / shard.name).write_bytes(shard.read_bytes())
    manifest["sessions"].update(old["sessions"])
    shards.write_manifest(fs, f"{mixed}/frames", manifest)
    ds = FrameStream(str(mixed), 2, 128, "stream", eval_fraction=0.0)
    assert ds.channels == CHANNELS and ds.schema_version == "2.0"
    i_old = ds.session_ids.index(old_sid)
    seen = 0
    for batch in ds:
        assert set(PLANES) <= set(batch)
        mask, s, t = batch["mask"].numpy(), batch["session"].numpy(), batch["t"].numpy()
        for name, plane in zip(PLANES, truth, strict=True):
            values = batch[name].numpy()
            assert not values[mask & (s == i_old)].any()
            new = mask & (s != i_old)
            assert np.array_equal(values[new], plane[t[new]])
            seen += int(new.sum())
    assert seen == 3 * truth.shape[1]


def test_a_shard_of_an_unknown_major_version_is_refused(tmp_path):
    sid, path = write(tmp_path)
    file = pq.ParquetFile(path)
    current = schema.load("frames")
    arrow = current.arrow.with_metadata({**current.arrow.metadata, schema.VERSION_KEY: b"3.0"})
    newer = schema.TableSchema("frames", "3.0", arrow, current.doc)
    footer = {SESSION_KEY: shards.footer_value(file, SESSION_KEY)}
    fs, _ = shards.filesystem(str(tmp_path))
    shards.write_table(fs, path, file.read(), newer, row_group_size=8, footer_metadata=footer)
    said = f"{path}: frames schema version 3.0 is not supported (this ghframes reads 2.x)"
    assert errors(tmp_path, sid)[:3] == [said] * 3


def damaged_fg(tmp_path, change) -> tuple[str, str]:
    """DATA whose chunk 1's fg is `change(fg blob of a chunk with colour)`."""
    sid, path = write(tmp_path)
    plane = np.zeros((256, ROWS, COLS), np.uint8)
    plane[:, 3, :10] = 204  # a keyword, on every frame
    plane[130:, 5, 7] = 9
    blob = encode_plane(plane)

    def damage(cols: dict) -> dict:
        cols["fg"][1] = change(blob)
        return cols

    rewrite(path, damage)
    return sid, path


@pytest.mark.parametrize(
    "change, said",
    [
        (lambda b: b[:-5], "fg does not decompress"),
        (lambda b: b + b, "fg in 4 segments for 256 frames (expected one per 128)"),
        (lambda b: b[: len(b) // 2], "fg does not decompress"),
    ],
)
def test_damaged_colour_is_refused_naming_chunk_and_column(tmp_path, change, said):
    sid, path = damaged_fg(tmp_path, change)
    got = errors(tmp_path, sid)
    # the dataset, verify and the loader decode fg; the lazy session only when shown
    assert got[1] == ""
    for message in (got[0], got[2], got[3]):
        assert message.startswith(f"{path}: chunk 1: {said}"), got
    with pytest.raises(GhframesError, match=f"chunk 1: {said[:10]}"):
        open_lazy(str(tmp_path), sid).colours(300)


def test_a_sound_colour_column_passes_verify(tmp_path):
    sid, path = damaged_fg(tmp_path, lambda b: b)
    assert errors(tmp_path, sid) == ["", "", "", ""]
    plane = open_dataset(str(tmp_path)).session(sid).fg
    assert (
        plane[256 + 129, 5, 7] == 0
        and plane[256 + 130, 5, 7] == 9
        and plane[256, 3, :10].tolist() == [204] * 10
    )
    assert not plane[:256].any() and not plane[512:].any()
