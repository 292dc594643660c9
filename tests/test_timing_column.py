"""Each action's time (`dt`, frames schema 1.3): recorded, stored, read, batched and played.

Sessions are recorded through the real Recorder with known times and written by the real shard
writer; shards of frames 1.2 (no `dt`) are written as that version wrote them
(test_reader.write_old_version).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from test_export import browse, chromium, dom_state, read_cast
from test_reader import write_old_version

from conftest import batches, same
from ghframes import cli
from ghframes.render.recorder import MAX_DT, Recorder
from ghframes.store import shards
from ghframes.store.chunks import open_lazy
from ghframes.store.codec import encode_chunk
from ghframes.store.frames import open_dataset, write_one_session_dataset, write_session
from ghframes.store.geometry import COLS, ROWS
from ghframes.store.reader import FrameShard
from ghframes.training.loader import FrameStream
from ghframes.view.player_html import player_data

RNG = np.random.default_rng(3)
# 300 frames (two chunks): typing-like times, a zero, the cap, and one past it
DTS = [int(x) for x in RNG.integers(40, 400, 300)]
DTS[1], DTS[7], DTS[200], DTS[-1] = 0, MAX_DT, 70_000, 5


def record(dts: list[int]) -> dict[str, list]:
    """A session recorded with these times: action t types "a" (frame t shows t of them)."""
    recorder = Recorder()
    recorder.frame()
    for dt in dts[:-1]:
        recorder.act("a", "a", dt)
    recorder.act("<C-d>", None, dts[-1])
    return recorder.finish()


def stored(dts: list[int]) -> np.ndarray:
    return np.minimum(np.array(dts, np.int64), MAX_DT)


def recorded_dataset(data, dts: list[int] = DTS) -> str:
    """DATA holding one session recorded with times `dts`; returns its id."""
    chunks = record(dts)
    encoded = list(
        zip(chunks["num_frames"], chunks["frame_itemsize"], chunks["frames"], strict=True)
    )
    dt = np.concatenate([np.frombuffer(b, "<u2") for b in chunks["dt"]])
    return write_one_session_dataset(str(data), "r", encoded, dt=dt)


def test_the_recorder_stores_each_actions_time_with_its_frame(tmp_path):
    chunks = record(DTS)
    assert chunks["num_frames"] == [256, 44]
    assert [len(b) for b in chunks["dt"]] == [2 * 256, 2 * 44]  # uint16, one per frame
    fs, root = shards.filesystem(str(tmp_path))
    meta = {"repo": "r", "num_frames": 300, "commits": [], "changes": []}
    write_session(fs, f"{root}/s.parquet", "s", chunks, meta)
    dt = FrameShard(fs, f"{root}/s.parquet").read().dt
    assert dt.dtype == np.dtype("<u2") and dt.tolist() == stored(DTS).tolist()
    assert dt[7] == dt[200] == 65_535 and dt[1] == 0 and dt[0] == DTS[0]
    assert pq.ParquetFile(tmp_path / "s.parquet").schema_arrow.metadata[
        b"ghframes.schema_version"
    ] == (b"2.0")


def test_the_recorders_times_must_be_whole_milliseconds_from_zero():
    recorder = Recorder()
    recorder.frame()
    with pytest.raises(ValueError, match=r"'a': dt must be >= 0 ms, got -1"):
        recorder.act("a", "a", -1)
    with pytest.raises(TypeError):
        recorder.act("a", "a", 12.5)  # refused, not truncated
    recorder.act("a", "a", np.int64(7))
    recorder.act("b", None)  # the default while render/session.py passes none
    assert np.frombuffer(recorder.finish()["dt"][0], "<u2").tolist() == [7, 100]


def test_the_reading_api_returns_the_times(tmp_path):
    sid = recorded_dataset(tmp_path)
    session = open_dataset(str(tmp_path)).session(sid)
    assert session.dt.dtype == np.uint16 and session.dt.shape == (len(session.frames),)
    assert session.dt.tolist() == stored(DTS).tolist()
    assert open_lazy(str(tmp_path), sid).dt.tolist() == stored(DTS).tolist()


def test_the_times_cost_little_storage(tmp_path):
    """The dt column is zstd-compressed like every other: steady typing costs a fraction of its
    2 raw bytes a frame."""
    dts = [int(x) for x in RNG.choice([80, 100, 120, 150], 4096)]
    encoded = [(256, *encode_chunk(np.full((256, ROWS, COLS), 32, np.uint32)))] * 16
    write_one_session_dataset(str(tmp_path), "c", encoded, dt=np.array(dts))
    meta = pq.ParquetFile(tmp_path / "frames" / "c.parquet").metadata
    names = meta.schema.to_arrow_schema().names
    j = names.index("dt")
    size = sum(meta.row_group(r).column(j).total_compressed_size for r in range(2))
    assert size / 4096 < 0.5, size


# --- the loader ----------------------------------------------------------------------------------

N_FRAMES = 1000
EXPECTED = (np.arange(N_FRAMES) * 7919) % 65_536  # a different time for each frame


@pytest.fixture
def timed(tmp_path) -> str:
    """DATA with one session of 1,000 frames (four chunks), frame t's time EXPECTED[t]."""
    frames = np.full((256, ROWS, COLS), 32, np.uint32)
    counts = [256, 256, 256, 232]
    encoded = [(n, *encode_chunk(frames[:n])) for n in counts]
    write_one_session_dataset(str(tmp_path), "t", encoded, dt=EXPECTED)
    return str(tmp_path)


@pytest.mark.parametrize(("mode", "B", "T"), [("stream", 2, 100), ("window", 3, 96)])
def test_batch_times_line_up_with_the_frames(timed, mode, B, T):
    ds = FrameStream(timed, B, T, mode, eval_fraction=0.0)
    got = batches(ds)
    seen = 0
    for b in got:
        assert b["dt"].dtype == torch.int32 and b["dt"].shape == (B, T)
        mask = b["mask"]
        assert torch.equal(b["dt"][mask], torch.from_numpy(EXPECTED[b["t"][mask].numpy()]).int())
        assert not b["dt"][~mask].any()
        seen += int(mask.sum())
    assert seen == (N_FRAMES if mode == "stream" else N_FRAMES // T * T)
    # in DataLoader workers (shared memory) and resumed mid-epoch: the same times
    ds.set_epoch(0)  # iterated to its end, it would go on with epoch 1
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    same(got, batches(loader))
    first = FrameStream(timed, B, T, mode, eval_fraction=0.0)
    it = iter(first)
    head = [{k: v.clone() for k, v in next(it).items()} for _ in range(3)]
    resumed = FrameStream(timed, B, T, mode, eval_fraction=0.0)
    resumed.load_state_dict(first.state_dict())
    same(got, head + batches(resumed))


# --- exports -------------------------------------------------------------------------------------


def export(data, sid: str, fmt: str, out, *flags: str) -> int:
    argv = ["export", str(data), "--session", sid, "--format", fmt, "-o", str(out), *flags]
    return cli.main(argv)


def output_times(path) -> tuple[dict, list[float]]:
    header, events = read_cast(path)
    return header, [e[0] for e in events if e[1] == "o"]


def test_cast_plays_at_the_recorded_times(tmp_path, capsys):
    sid = recorded_dataset(tmp_path)
    out = tmp_path / "r.cast"
    assert export(tmp_path, sid, "cast", out) == 0
    assert "at the recorded times, pauses cut to 2 s" in capsys.readouterr().out
    header, times = output_times(out)
    # frame t + 1 appears when action t is pressed: dt[0] + ... + dt[t] ms in
    cumulative = np.cumsum(stored(DTS))
    assert times == [0.0, *(int(ms) / 1000 for ms in cumulative[:-1])]
    assert header["idle_time_limit"] == 2.0  # a pause of 65 s plays in 2
    _, events = read_cast(out)
    assert [e[0] for e in events if e[1] == "m"] == [0.0]  # the commit at frame 0
    # a range counts from its first frame
    assert export(tmp_path, sid, "cast", out, "--from", "100", "--to", "250") == 0
    _, times = output_times(out)
    part = np.cumsum(stored(DTS)[100:249])
    assert times == [0.0, *(int(ms) / 1000 for ms in part)] and len(times) == 150
    # pauses in full
    assert export(tmp_path, sid, "cast", out, "--idle-time-limit", "0") == 0
    header, again = output_times(out)
    assert "idle_time_limit" not in header and again[-1] == cumulative[-2] / 1000
    asciinema = shutil.which("asciinema") or os.path.join(
        os.path.dirname(sys.executable), "asciinema"
    )
    if os.path.exists(asciinema):  # asciinema reads the header with idle_time_limit
        done = subprocess.run([asciinema, "cat", str(out)], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr


def test_cps_overrides_the_recorded_times(tmp_path, capsys):
    sid = recorded_dataset(tmp_path)
    out = tmp_path / "c.cast"
    assert export(tmp_path, sid, "cast", out, "--cps", "20") == 0
    assert "at 20 cps" in capsys.readouterr().out
    header, times = output_times(out)
    assert times == [round(t / 20, 6) for t in range(300)] and "idle_time_limit" not in header
    data = player_data(open_lazy(str(tmp_path), sid), 0, 300, 20.0)
    assert data["dt"] is None and data["cps"] == 20.0
    data = player_data(open_lazy(str(tmp_path), sid), 10, 20)
    assert data["dt"] == stored(DTS)[10:20].tolist() and data["cps"] is None
    assert data["idle"] == 2000


def test_a_shard_without_times_plays_at_the_default_rate(tmp_path, capsys):
    sid = recorded_dataset(tmp_path)
    write_old_version(str(tmp_path / "frames" / "r.parquet"), "1.2")
    out = tmp_path / "o.cast"
    assert export(tmp_path, sid, "cast", out) == 0
    assert "at 30 cps (the shard records no times)" in capsys.readouterr().out
    header, times = output_times(out)
    assert times == [round(t / 30, 6) for t in range(300)] and "idle_time_limit" not in header
    data = player_data(open_lazy(str(tmp_path), sid), 0, 300)
    assert data["dt"] is None and data["cps"] == 30.0
    assert export(tmp_path, sid, "html", tmp_path / "o.html") == 0


@pytest.mark.parametrize("fmt", ["cast", "html"])
def test_idle_time_limit_must_be_a_number_of_seconds(tmp_path, capsys, fmt):
    sid = recorded_dataset(tmp_path)
    for bad in ("-1", "nan", "inf"):
        assert export(tmp_path, sid, fmt, tmp_path / "x", "--idle-time-limit", bad) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--idle-time-limit must be a finite number" in err
    assert not os.path.exists(tmp_path / "x")


def test_html_shows_each_frame_for_its_time(tmp_path):
    """A 60 s pause on frame 0, then 100 ms a key: played for 3 s, the page is past the pause
    (cut to 2 s), still on it with pauses in full, and near frame 3 at --cps 1."""
    chromium()
    sid = recorded_dataset(tmp_path, [60_000] + [100] * 39)
    out = tmp_path / "p.html"
    assert export(tmp_path, sid, "html", out) == 0
    page = out.read_text()
    data = json.loads(page.split('type="application/json">', 1)[1].split("</script>")[0])
    assert data["dt"] == [60_000] + [100] * 39

    def frame_after_playing(path) -> int:
        _, status, _ = dom_state(browse(path, "play", "--dump-dom"))
        return int(status.split("frame ")[1].split("/")[0])

    _, status, _ = dom_state(browse(out, "", "--dump-dom"))
    assert status.startswith("paused | frame 0/40 | 1x recorded time | dt 60000 ms"), status
    assert 3 <= frame_after_playing(out) < 39
    assert export(tmp_path, sid, "html", out, "--idle-time-limit", "0") == 0
    assert frame_after_playing(out) == 0
    assert export(tmp_path, sid, "html", out, "--cps", "1") == 0
    assert 1 <= frame_after_playing(out) <= 4
