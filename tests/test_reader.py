"""The one frame-shard reader (ghframes/store/reader.py): every reader of a shard, the dataset,
the lazy session, `verify` and the training loader, refuses a damaged chunk layout with the
same message, naming the shard and the chunk."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_codec import whole_frames

from ghframes.errors import GhframesError
from ghframes.render.terminal import COLS, ROWS
from ghframes.store import schema, shards
from ghframes.store.chunks import open_lazy
from ghframes.store.codec import encode_chunk
from ghframes.store.frames import (
    SESSION_KEY,
    frames_schema,
    open_dataset,
    write_one_session_dataset,
)
from ghframes.store.reader import FrameShard
from ghframes.training.loader import FrameStream
from ghframes.verify import verify_session

COUNTS = [256, 256, 100]  # the writer's layout: full chunks, then the rest
EDITS = {"repos": {"s": {"shards": []}}}  # the edits manifest: no edit rows to replay


def write(data, counts=COUNTS) -> tuple[str, str]:
    """DATA with one session of `counts` frames a chunk (frame t shows t % 251 in its first
    cell); returns (session id, shard path)."""
    encoded = []
    for k, n in enumerate(counts):
        frames = np.full((n, ROWS, COLS), 32, np.uint32)
        frames[:, 0, 0] = (sum(counts[:k]) + np.arange(n)) % 251
        encoded.append((n, *encode_chunk(frames)))
    sid = write_one_session_dataset(str(data), "s", encoded)
    return sid, str(data / "frames" / "s.parquet")


def rewrite(path: str, change) -> None:
    """Write the shard at `path` again with its columns {name: list} passed through `change`."""
    file = pq.ParquetFile(path)
    columns = change(file.read().to_pydict())
    footer = {SESSION_KEY: shards.footer_value(file, SESSION_KEY)}
    fs, _ = shards.filesystem(os.path.dirname(path))  # filesystem() takes a folder
    table = pa.table(columns)
    shards.write_table(fs, path, table, frames_schema(), row_group_size=8, footer_metadata=footer)


def write_old_version(
    path: str, version: str = "1.2", drop: tuple[str, ...] | None = None, frames_dir=None
):
    """Write the shard at `path`, and the manifest of its dataset (in `frames_dir`, DATA/frames:
    default the shard's folder), again as frames `version` wrote
    them: without the columns added after it (`dt` in 1.3, the colour planes in 2.0; `drop`:
    these instead), whole frames and the cursor positions as they are (2.0 row-codes the one
    and delta-codes the other), its version in the metadata."""
    file = pq.ParquetFile(path)
    fs, folder = shards.filesystem(os.path.dirname(path))  # filesystem() takes a folder
    chunks = FrameShard(fs, path, colours=False).read()
    positions = chunks.cursor
    frames = [whole_frames(chunks.decode(k)) for k in range(len(chunks))]
    current = frames_schema()
    if drop is None:
        since = {c["name"]: c["since"] for c in current.doc["columns"] if "since" in c}
        older = tuple(int(x) for x in version.split("."))
        drop = tuple(n for n, v in since.items() if tuple(int(x) for x in v.split(".")) > older)
    table = file.read().drop_columns(list(drop)).replace_schema_metadata(None)
    counts = table.column("num_frames").to_pylist()
    cursor = [part.tobytes() for part in np.split(positions, np.cumsum(counts)[:-1])]
    table = table.set_column(table.schema.get_field_index("cursor"), "cursor", pa.array(cursor))
    table = table.set_column(table.schema.get_field_index("frames"), "frames", pa.array(frames))
    footer = {SESSION_KEY: shards.footer_value(file, SESSION_KEY)}
    arrow = current.arrow
    for name in drop:
        arrow = arrow.remove(arrow.get_field_index(name))
    arrow = arrow.with_metadata({**current.arrow.metadata, schema.VERSION_KEY: version.encode()})
    old = schema.TableSchema("frames", version, arrow, current.doc)
    shards.write_table(fs, path, table, old, row_group_size=8, footer_metadata=footer)
    folder = str(frames_dir or folder)
    manifest = shards.read_json(fs, f"{folder}/{shards.MANIFEST}")
    shards.write_manifest(fs, folder, dict(manifest, version=version))


def errors(data, sid: str) -> list[str]:
    """What each reader says about the session: the dataset, the lazy session, verify and the
    loader ('' for one that read it)."""
    said = []
    for read in (
        lambda: open_dataset(str(data)).session(sid),
        lambda: open_lazy(str(data), sid),
        lambda: list(FrameStream(str(data), 1, 64, "stream", eval_fraction=0.0)),
    ):
        try:
            read()
            said.append("")
        except GhframesError as exc:
            said.append(str(exc))
    dataset = open_dataset(str(data))
    (info,) = dataset.sessions()
    problems = verify_session(dataset, info, EDITS)
    said.insert(2, problems[0].removeprefix(f"{sid}: ") if problems else "")
    return said


def test_a_sound_shard_reads_the_same_whole_and_by_row_group(tmp_path):
    sid, path = write(tmp_path, [256] * 17 + [5])  # 3 row groups
    fs, _ = shards.filesystem(os.path.dirname(path))  # filesystem() takes a folder
    shard = FrameShard(fs, path)
    whole = shard.read()
    parts = list(shard.groups())
    assert [p.k0 for p in parts] == [0, 8, 16] and whole.total_frames == 17 * 256 + 5
    assert np.array_equal(np.concatenate([p.cursor for p in parts]), whole.cursor)
    assert np.array_equal(np.concatenate([p.dt for p in parts]), whole.dt)
    assert whole.dt.dtype == np.dtype("<u2") and whole.dt.tolist() == [100] * 4357
    assert sum((p.actions.flatten().to_pylist() for p in parts), []) == ["x"] * 4357
    for p in parts:
        for k in range(p.k0, p.k0 + len(p)):
            assert np.array_equal(p.decode(k), whole.decode(k))
    frames = open_dataset(str(tmp_path)).session(sid).frames
    assert list(frames[:, 0, 0]) == [t % 251 for t in range(4357)]
    assert errors(tmp_path, sid) == ["", "", "", ""]


def test_chunks_out_of_order_are_refused_by_every_reader(tmp_path):
    sid, path = write(tmp_path)

    def swap(cols: dict) -> dict:
        return {name: [v[0], v[2], v[1]] for name, v in cols.items()}

    rewrite(path, swap)
    whole = (
        f"{path}: chunk 1: the row holds chunk 2 (frames 512..+100); the layout puts chunk 1 "
        "at frames 256..+100 (chunks out of order or missing)"
    )
    layout = whole.replace("256..+100", "256..+256")  # the loader knows chunk 1 is full
    assert errors(tmp_path, sid) == [whole, whole, whole, layout]


def test_missing_actions_are_refused_by_every_reader(tmp_path):
    sid, path = write(tmp_path)

    def drop(cols: dict) -> dict:
        cols["actions"][1] = cols["actions"][1][:-1]
        return cols

    rewrite(path, drop)
    said = f"{path}: chunk 1: 256 frames but 255 actions and 256 cursor positions"
    assert errors(tmp_path, sid) == [said] * 4


def test_missing_times_are_refused_by_every_reader(tmp_path):
    sid, path = write(tmp_path)

    def drop(cols: dict) -> dict:
        cols["dt"][1] = cols["dt"][1][:-2]  # one uint16 short
        return cols

    rewrite(path, drop)
    said = f"{path}: chunk 1: 256 frames but 510 bytes of dt (2 a frame)"
    assert errors(tmp_path, sid) == [said] * 4


def test_a_shard_from_before_times_reads_without_them(tmp_path):
    """Frames 1.2 shards have no `dt` column: every reader reads them, with no times (None;
    the loader: zeros)."""
    sid, path = write(tmp_path)
    write_old_version(path, "1.2")
    assert pq.ParquetFile(path).schema_arrow.names[-1] == "cursor"
    assert errors(tmp_path, sid) == ["", "", "", ""]
    session = open_dataset(str(tmp_path)).session(sid)
    assert session.dt is None and list(session.frames[:, 0, 0]) == [t % 251 for t in range(612)]
    assert open_lazy(str(tmp_path), sid).dt is None
    (batch,) = FrameStream(str(tmp_path), 1, 612, "window", eval_fraction=0.0)
    assert batch["mask"].all() and not batch["dt"].any()


def test_a_shard_of_a_version_with_times_must_have_them(tmp_path):
    sid, path = write(tmp_path)
    write_old_version(path, "1.3", drop=("dt", "fg", "bg", "attrs"))  # 1.3 has dt
    said = f"{path}: damaged shard (a frames 1.3 shard without its 'dt' column)"
    loader = said.replace(": damaged", ": chunk 0: damaged")
    assert errors(tmp_path, sid) == [said, said, said, loader]


def test_frames_that_do_not_add_up_to_the_session(tmp_path):
    sid, path = write(tmp_path)
    file = pq.ParquetFile(path)
    description = json.loads(shards.footer_value(file, SESSION_KEY))
    fs, _ = shards.filesystem(os.path.dirname(path))  # filesystem() takes a folder
    footer = {SESSION_KEY: json.dumps(dict(description, num_frames=700))}
    table = file.read().replace_schema_metadata(None)
    shards.write_table(fs, path, table, frames_schema(), row_group_size=8, footer_metadata=footer)
    said = f"{path}: chunks hold 612 frames, the session says 700"
    # the loader goes by the manifest's 612 frames, which the chunks hold
    assert errors(tmp_path, sid) == [said, said, said, ""]


def test_the_loader_refuses_a_shard_of_another_layout(tmp_path):
    sid, path = write(tmp_path, [200, 312, 100])  # readable whole, but not where frames are
    assert errors(tmp_path, sid)[:3] == ["", "", ""]
    assert errors(tmp_path, sid)[3] == (
        f"{path}: chunk 0: the row holds chunk 0 (frames 0..+200); the layout puts chunk 0 at "
        "frames 0..+256 (chunks out of order or missing)"
    )
    sid, path = write(tmp_path, [256, 256])
    manifest = tmp_path / "frames" / "_manifest.json"
    doc = json.loads(manifest.read_text())
    doc["sessions"][sid]["num_frames"] = 600
    manifest.write_text(json.dumps(doc))
    with pytest.raises(GhframesError) as err:
        list(FrameStream(str(tmp_path), 1, 64, "stream", eval_fraction=0.0))
    assert str(err.value) == (
        f"{path}: chunk 2: the shard holds 2 chunks, the session's 600 frames make 3"
    )


def test_verify_streams_row_groups(tmp_path, monkeypatch):
    """verify never reads a whole shard: memory stays that of one row group."""
    sid, _ = write(tmp_path, [256] * 20)

    def whole(self):
        raise AssertionError("read the whole shard")

    monkeypatch.setattr(FrameShard, "read", whole)
    dataset = open_dataset(str(tmp_path))
    (info,) = dataset.sessions()
    assert verify_session(dataset, info, EDITS) == []


@pytest.mark.parametrize(
    "footer, said",
    [
        ('{"repo": "s", "num_fr', "damaged session description in the footer (Unterminated"),
        ("[1, 2]", "damaged session description in the footer (no 'repo' of the right type)"),
        ('{"repo": "s"}', "damaged session description in the footer (no 'num_frames'"),
    ],
)
def test_a_damaged_session_description_is_refused_by_every_reader(tmp_path, footer, said):
    sid, path = write(tmp_path)
    file = pq.ParquetFile(path)
    fs, _ = shards.filesystem(os.path.dirname(path))  # filesystem() takes a folder
    table = file.read().replace_schema_metadata(None)
    shards.write_table(
        fs, path, table, frames_schema(), row_group_size=8, footer_metadata={SESSION_KEY: footer}
    )
    got = errors(tmp_path, sid)
    assert all(e.startswith(f"{path}: {said}") for e in got[:3]), got


@pytest.mark.parametrize(
    "payload, said",
    [
        (bytes(range(128, 256)), "damaged JSON (not UTF-8 text)"),
        (b'{"sessions": {', "damaged JSON (Expecting"),
        (b"[1, 2]", "not a ghframes frames manifest (a JSON array, not an object)"),
        (b'{"table": "frames", "version": "99.0"}', "frames schema version 99.0 is not supported"),
        (b'{"table": "frames", "version": "1.0", "repos": {}}', "damaged manifest (no 'sessions')"),
        (
            b'{"table": "frames", "version": "1.0", "repos": {}, "sessions": []}',
            "damaged manifest ('sessions' is a JSON array, not an object)",
        ),
        (
            b'{"table": "frames", "version": "1.0", "repos": {"r": 3}, "sessions": {}}',
            "damaged manifest (repos['r'] is a JSON number, not an object)",
        ),
    ],
)
def test_a_damaged_manifest_is_refused_with_its_path(tmp_path, payload, said):
    (tmp_path / "frames").mkdir()
    manifest = tmp_path / "frames" / "_manifest.json"
    manifest.write_bytes(payload)
    with pytest.raises(GhframesError) as err:
        open_dataset(str(tmp_path))
    assert str(err.value).startswith(f"{manifest}: {said}"), str(err.value)


def test_data_that_is_a_file_or_unreadable_is_one_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(GhframesError, match=r"file: not a directory$"):
        open_dataset(str(tmp_path / "file"))
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "_manifest.json").mkdir()  # a folder where the manifest should be
    with pytest.raises(GhframesError, match=r"_manifest.json: cannot be read"):
        open_dataset(str(tmp_path))
