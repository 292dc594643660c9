"""Read a frame shard: open it, check its version and chunk layout, and hand out its chunks.

The one reader of DATA/frames shards (schemas/frames.json): `Dataset.session` (frames.py),
`LazySession` (chunks.py), `ghframes verify` and the training loader all read through
`FrameShard`, so that every shard is checked the same way, each problem with one message that
names the shard and the chunk.

Row k of a shard is chunk k of its session, and its first frame is where chunk k - 1 ends. The
writer fills every chunk but a session's last (FRAMES_PER_CHUNK frames): a reader that must
know which chunk and row group hold a frame before reading them (the loader, from the footer
alone) opens the shard with the session's `num_frames`, and that layout is then required.

Columns a version added (`since` in schemas/frames.json: `dt` in 1.3, the colour planes `fg`,
`bg`, `attrs` in 2.0) may be absent from a shard of an earlier version; the reader then hands out
None for `dt` and zeros for the planes (and logs once per shard opened that it has no colour).
Absent from a shard of their version or later, they are damage. The planes are read only when
asked (`colours=True`) and decoded only when asked (`Chunks.plane`): a reader that wants
characters only reads and decodes characters only. From 2.0 `cursor` is delta-coded within each
chunk; `Chunks.cursor` is always the positions.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import logging
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from ghframes.errors import GhframesError
from ghframes.store import schema, shards
from ghframes.store.codec import (
    FRAMES_PER_CHUNK,
    ZSTD,
    decode_chunk,
    decode_cursors,
    dtype_of,
)
from ghframes.store.geometry import COLS, ROWS
from ghframes.store.planes import PLANES, SegmentDecoder
from ghframes.store.segments import Source, segment_spans

log = logging.getLogger("ghframes")
CURSOR_DELTA_SINCE = (2, 0)  # frames schema whose `cursor` is delta-coded within each chunk
ROWS_CODED_SINCE = (2, 0)  # frames schema whose `frames` are row-coded (store/planes.py)

SESSION_KEY = "ghframes.session"  # footer key of the session description (schemas/frames.json)
# The keys of the description that readers index, and their JSON types.
DESCRIPTION_SHAPE = {"repo": str, "num_frames": int, "commits": list, "changes": list}


@functools.cache
def chunk_columns() -> list[str]:
    """The columns a reader reads: all of schemas/frames.json but the session id, which the
    shard's own description holds."""
    return [name for name in schema.load("frames").names if name != "session"]


@functools.cache
def added_columns() -> dict[str, tuple[int, int]]:
    """{column: (major, minor) version that added it} for the columns of schemas/frames.json
    marked `since`: a shard of an earlier version lacks them (`dt` before 1.3)."""
    columns = schema.load("frames").doc["columns"]
    return {c["name"]: _version(c["since"]) for c in columns if "since" in c}


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


class FrameShard:
    """One frame shard, opened and checked: its footer (session description, row groups) at
    once, its chunks when asked, all together (`read`) or a row group at a time (`groups`,
    `read_group`).

    num_frames: the session's frames, when the caller knows them beforehand (the loader, from
        the manifest): the footer's chunk count and every row group read are then checked
        against the writer's layout, so that frame t is in chunk t // FRAMES_PER_CHUNK.
    where: what an error opening it names (default: the path).
    pre_buffer: read a row group's column chunks in one request (one GET on object storage).
    retries: how transient read errors of remote storage are retried (shards.Retries).
    colours: read the colour planes too (`fg`, `bg`, `attrs`); False reads characters, actions,
        cursor and dt only. `has_colour` says whether the shard holds them (frames 2.0 on); a
        shard without them, opened with colours=True, is logged once as having no colour.
    """

    def __init__(
        self,
        fs: pafs.FileSystem,
        path: str,
        num_frames: int | None = None,
        where: str | None = None,
        pre_buffer: bool = False,
        retries: shards.Retries = shards.NO_RETRIES,
        colours: bool = True,
    ) -> None:
        self.fs, self.path, self.num_frames = fs, path, num_frames
        self.pre_buffer, self.retries = pre_buffer, retries
        self.reopen(where or path)
        self.columns = self._columns(where or path)
        self.has_colour = all(name in self.columns for name in PLANES)
        if not colours:
            self.columns = [name for name in self.columns if name not in PLANES]
        elif not self.has_colour:
            log.warning(
                "%s: no colour in this shard (frames schema %s < 2.0): fg, bg and attrs read as 0",
                path,
                self.schema_version,
            )
        meta = self.file.metadata
        self.num_chunks = meta.num_rows
        rows = (meta.row_group(r).num_rows for r in range(meta.num_row_groups))
        self.group_first = [0, *itertools.accumulate(rows)]  # first chunk of each row group
        self._description: dict | None = None
        if num_frames is not None:
            expected = -(-num_frames // FRAMES_PER_CHUNK)
            if self.num_chunks != expected:
                raise GhframesError(
                    f"{path}: chunk {min(self.num_chunks, expected)}: the shard holds "
                    f"{self.num_chunks} chunks, the session's {num_frames} frames make {expected}"
                )

    def reopen(self, where: str) -> None:
        """Open the file (again, after `close`): its footer is read and its version checked."""
        frames = schema.load("frames")
        self.file = shards.open_shard(
            self.fs, self.path, frames, where, pre_buffer=self.pre_buffer, retries=self.retries
        )

    def _columns(self, where: str) -> list[str]:
        """The chunk columns this shard holds: all, less those added after its version."""
        have = set(self.file.schema_arrow.names)
        raw = (self.file.schema_arrow.metadata or {}).get(schema.VERSION_KEY, b"")
        self.schema_version = raw.decode() or "?"
        try:  # schema.check has read the major version; a minor that is not a number is 0
            version = _version(raw.decode())
        except ValueError:
            version = (int(raw.decode().split(".")[0]), 0)
        self.version = version
        added = added_columns()
        columns = []
        for name in chunk_columns():
            if name in have:
                columns.append(name)
            elif name not in added or version >= added[name]:
                raise GhframesError(
                    f"{where}: damaged shard (a frames {raw.decode() or '?'} shard without "
                    f"its {name!r} column)"
                )
        return columns

    def close(self) -> None:
        """Let the file go; its layout stays known, and `reopen` opens it again."""
        self.file = None

    def group_of(self, k: int) -> int:
        """The row group that holds chunk k."""
        return bisect.bisect_right(self.group_first, k) - 1

    def description(self) -> dict:
        """The session description in the footer (`ghframes.session` in schemas/frames.json)."""
        if self._description is None:
            try:
                raw = shards.footer_value(self.file, SESSION_KEY)
                description = None if raw is None else json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise GhframesError(
                    f"{self.path}: damaged session description in the footer ({exc})"
                ) from None
            if raw is None:
                raise GhframesError(f"{self.path}: shard has no session description")
            wrong = [
                key
                for key, kind in DESCRIPTION_SHAPE.items()
                if not isinstance(description, dict) or not isinstance(description.get(key), kind)
            ]
            if wrong:
                raise GhframesError(
                    f"{self.path}: damaged session description in the footer "
                    f"(no {wrong[0]!r} of the right type)"
                )
            self._description = description
        return self._description

    def read(self) -> Chunks:
        """Every chunk, checked; their frames add up to the session description's."""
        table = self._read(lambda file: file.read(columns=self.columns), self.path)
        chunks = self._chunks(table, 0, 0)
        self._check_total(chunks.total_frames)
        return chunks

    def groups(self) -> Iterator[Chunks]:
        """The chunks a row group at a time (the memory of one), checked as `read` checks them."""
        total = 0
        for r in range(len(self.group_first) - 1):
            chunks = self._group(r, total, f"{self.path}: chunk {self.group_first[r]}")
            total += chunks.total_frames
            yield chunks
        self._check_total(total)

    def read_group(self, r: int, where: str) -> Chunks:
        """Row group r's chunks, checked against the writer's layout of `num_frames` (the shard
        opened with it, its file open); a failed read names `where`."""
        assert self.num_frames is not None, "read_group: open the shard with num_frames"
        return self._group(r, 0, where)  # first_frame: the layout places every chunk

    def _group(self, r: int, first_frame: int, where: str) -> Chunks:
        columns = self.columns
        table = self._read(
            lambda file: file.read_row_group(r, columns=columns, use_threads=False), where
        )
        return self._chunks(table, self.group_first[r], first_frame)

    def _read(self, read, where: str) -> pa.Table:
        file = self.file
        try:
            return self.retries(lambda: read(file))
        except (pa.ArrowInvalid, OSError, KeyError, ValueError) as exc:
            raise self.retries.error(where, exc) from None

    def _chunks(self, table: pa.Table, k0: int, first_frame: int) -> Chunks:
        return Chunks(table, self.path, k0, first_frame, self.num_frames, self.version)

    def _check_total(self, total: int) -> None:
        said = self.description()["num_frames"]
        if total != said:
            raise GhframesError(f"{self.path}: chunks hold {total} frames, the session says {said}")


class Chunks:
    """The chunks [k0, k0 + n) of one shard, checked, their frames still compressed.

    first_frame, num_frames, frame_itemsize: int64 [n]; `frames`: their zstd blobs (a pyarrow
    binary array; `data`: its bytes; `offsets`: n + 1 ints, where each blob starts in `data`);
    `actions`: a pyarrow list array, per chunk a list of num_frames strings; `cursor`: uint8
    [total_frames, 2] (row, col), the positions (frames 2.0 delta-codes them; a 1.x shard's are
    a read-only view of its bytes); `dt`: uint16
    [total_frames] ms before each action (schemas/frames.json), a read-only view too, or None
    for a shard written before the column (frames 1.0 to 1.2); `planes`: {name: (bytes, offsets)}
    of the colour columns read (store/planes.py; empty when they were not read or the shard has
    none), decoded by `plane`, `plane_spans` and `plane_into`.

    Checked when made: row j is chunk k0 + j, starts where chunk k0 + j - 1 ends (at
    `first_frame` for j = 0) or, given the session's `num_frames`, where the writer's layout puts
    it, and holds one action, one cursor position and (where the column is) one dt per frame.
    """

    def __init__(
        self,
        table: pa.Table,
        path: str,
        k0: int,
        first_frame: int,
        num_frames: int | None,
        version: tuple[int, int] = (2, 0),
    ) -> None:
        self.path, self.k0 = path, k0
        cols = {name: table.column(name).combine_chunks() for name in table.column_names}
        n = len(cols["chunk"])
        ks = np.arange(k0, k0 + n)
        chunk = cols["chunk"].to_numpy()
        first = cols["first_frame"].to_numpy()
        sizes = cols["num_frames"].to_numpy().astype(np.int64)
        if num_frames is None:  # each chunk starts where the one before ends
            expected_first = first_frame + np.cumsum(sizes) - sizes
            expected_sizes = sizes
        else:  # the writer's layout: every chunk but the session's last is full
            expected_first = np.minimum(ks * FRAMES_PER_CHUNK, num_frames)
            expected_sizes = np.minimum(expected_first + FRAMES_PER_CHUNK, num_frames)
            expected_sizes -= expected_first
        wrong = np.flatnonzero(
            (chunk != ks) | (first != expected_first) | (sizes != expected_sizes)
        )
        if len(wrong):
            j = int(wrong[0])
            raise GhframesError(
                f"{path}: chunk {k0 + j}: the row holds chunk {chunk[j]} (frames {first[j]}"
                f"..+{sizes[j]}); the layout puts chunk {k0 + j} at frames {expected_first[j]}"
                f"..+{expected_sizes[j]} (chunks out of order or missing)"
            )
        actions, cursor = cols["actions"], cols["cursor"]
        num_actions = pc.list_value_length(actions).to_numpy(zero_copy_only=False)
        cursor_bytes = pc.binary_length(cursor).to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero((num_actions != sizes) | (cursor_bytes != 2 * sizes))
        if len(wrong):
            j = int(wrong[0])
            raise GhframesError(
                f"{path}: chunk {k0 + j}: {sizes[j]} frames but {num_actions[j]} actions "
                f"and {cursor_bytes[j] // 2} cursor positions"
            )
        dt = cols.get("dt")
        if dt is not None:
            dt_bytes = pc.binary_length(dt).to_numpy(zero_copy_only=False)
            wrong = np.flatnonzero(dt_bytes != 2 * sizes)
            if len(wrong):
                j = int(wrong[0])
                raise GhframesError(
                    f"{path}: chunk {k0 + j}: {sizes[j]} frames but {dt_bytes[j]} bytes of dt "
                    "(2 a frame)"
                )
        self.first_frame = expected_first
        self.num_frames = sizes
        self.total_frames = int(sizes.sum())
        self.frame_itemsize = cols["frame_itemsize"].to_numpy().astype(np.int64)
        self.frames = cols["frames"]
        self.data, self.offsets = _values(self.frames)
        self.actions = actions
        values, offsets = _values(cursor)
        self.cursor = np.frombuffer(values, np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 2)
        self.rows_coded = version >= ROWS_CODED_SINCE  # frames row-coded (store/planes.py)
        if version >= CURSOR_DELTA_SINCE and n:  # each chunk's differences, added up
            self.cursor = decode_cursors(self.cursor, expected_first - expected_first[0])
        self.planes = {name: _values(cols[name]) for name in PLANES if name in cols}
        self._decoder: SegmentDecoder | None = None
        self._plane_spans: dict[tuple[int, str], list[tuple[int, int, int, int]]] = {}
        self.dt = None
        if dt is not None:
            values, offsets = _values(dt)
            self.dt = np.frombuffer(values, np.uint8)[offsets[0] : offsets[-1]].view("<u2")
        self._segments: dict[int, list[tuple[int, int, int, int]]] = {}

    def __len__(self) -> int:
        return len(self.num_frames)

    def where(self, k: int) -> str:
        return f"{self.path}: chunk {k}"

    def dtype(self, k: int) -> np.dtype:
        """The dtype of chunk k's cells (an itemsize other than 1, 2 or 4 is refused)."""
        return dtype_of(int(self.frame_itemsize[k - self.k0]), self.where(k))

    def decode(self, k: int) -> np.ndarray:
        """Chunk k's frames, `[num_frames, ROWS, COLS]` of its dtype (codec.decode_chunk)."""
        j = k - self.k0
        blob = memoryview(self.data)[self.offsets[j] : self.offsets[j + 1]]
        size, n = int(self.frame_itemsize[j]), int(self.num_frames[j])
        return decode_chunk(blob, size, n, self.where(k), self.rows_coded, self._segment_decoder())

    def segments(self, k: int) -> list[tuple[int, int, int, int]]:
        """Chunk k's zstd frames (store/segments.py): (first, end) frame in the chunk and
        (start, end) byte in `data` of each; checked to be one per FRAMES_PER_SEGMENT frames, or
        one in all in a shard of frames 1.x (1.0 wrote chunks before segments)."""
        got = self._segments.get(k)
        if got is None:
            j = k - self.k0
            lo, hi = self.offsets[j], self.offsets[j + 1]
            n = int(self.num_frames[j])
            found = segment_spans(
                Source.of(self.data, lo, hi), n, self.where(k), "frames", not self.rows_coded
            )
            got = self._segments[k] = [(a, b, lo + x, lo + y) for a, b, x, y in found]
        return got

    def decode_into(
        self, k: int, dest: np.ndarray, segment: tuple[int, int, int, int] | None = None
    ) -> None:
        """Chunk k's frames, or those of one of its `segments(k)`, into `dest`: contiguous, of
        the chunk's dtype and exactly their shape."""
        if self.rows_coded:
            spans = self.segments(k) if segment is None else [segment]
            first, decoder = spans[0][0], self._segment_decoder()
            for span in spans:
                src = Source.of(self.data, span[2], span[3])
                into = dest[span[0] - first : span[1] - first]
                decoder.into(src, into, self.where(k), "frames")
            return
        # frames 1.x: whole frames, decoded straight into place (codec.ZSTD: no copy)
        if segment is None:
            j = k - self.k0
            lo, hi = self.offsets[j], self.offsets[j + 1]
        else:
            lo, hi = segment[2], segment[3]
        err = ZSTD.into(self.data.address + lo, hi - lo, memoryview(self.data)[lo:hi], dest)
        if err:
            raise GhframesError(f"{self.where(k)}: frames do not decompress ({err})")

    @property
    def has_colour(self) -> bool:
        """Whether the colour planes were read (the shard has them, and they were asked for)."""
        return bool(self.planes)

    def plane_spans(self, k: int, name: str) -> list[tuple[int, int, int, int]]:
        """Chunk k's segments of plane `name` (store/planes.py): (first, end) frame in the chunk
        and (start, end) byte in the plane's bytes of each; [] when every value is 0 (or the
        planes were not read)."""
        got = self.planes.get(name)
        if got is None:
            return []
        spans = self._plane_spans.get((k, name))
        if spans is None:
            data, offsets = got
            j = k - self.k0
            lo, hi = offsets[j], offsets[j + 1]
            spans = []
            if lo < hi:
                n = int(self.num_frames[j])
                found = segment_spans(Source.of(data, lo, hi), n, self.where(k), name)
                spans = [(a, b, lo + x, lo + y) for a, b, x, y in found]
            self._plane_spans[(k, name)] = spans
        return spans

    def plane_source(self, name: str, span: tuple[int, int, int, int]) -> Source:
        """The bytes of one of `plane_spans`' segments."""
        return Source.of(self.planes[name][0], span[2], span[3])

    def plane_into(self, k: int, name: str, dest: np.ndarray, span=None) -> None:
        """Chunk k's plane `name` into `dest` (uint8 [its frames, ROWS, COLS], contiguous): all of
        it, zeros where its values are all 0 or absent; or one of its `plane_spans(k, name)`."""
        spans = self.plane_spans(k, name) if span is None else [span]
        if not spans:
            dest.fill(0)
            return
        first, decoder = spans[0][0], self._segment_decoder()
        for span in spans:
            into = dest[span[0] - first : span[1] - first]
            decoder.into(self.plane_source(name, span), into, self.where(k), name)

    def plane(self, k: int, name: str) -> np.ndarray:
        """Chunk k's plane `name`: uint8 [num_frames, ROWS, COLS], a new array (zeros for a shard
        without colour)."""
        out = np.empty((int(self.num_frames[k - self.k0]), ROWS, COLS), np.uint8)
        self.plane_into(k, name, out)
        return out

    def _segment_decoder(self) -> SegmentDecoder:
        if self._decoder is None:
            self._decoder = SegmentDecoder()
        return self._decoder


def _values(array: pa.Array) -> tuple[pa.Buffer, np.ndarray]:
    """The bytes of a pyarrow binary array, and where in them each value starts (len + 1 ints)."""
    offsets = np.frombuffer(array.buffers()[1], np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    return array.buffers()[2], offsets.tolist()
