"""A row group of a frame shard as the training loader takes it: ids, cursor, dt, frames and
colour planes.

`Part(chunks)` turns the reader's `Chunks` (ghframes.store.reader) into what a batch copies:
action ids, cursor positions and each action's time; its frames stay compressed until `decode`
writes character ids (chars.py) straight into the batch, and its colour planes until
`plane_into` gathers their rows (ghframes/store/planes.py) straight into it.
`fill_from_segments` takes the frames of a chunk that a batch needs, segment by segment.
"""

from __future__ import annotations

import numpy as np
import torch

from ghframes.errors import GhframesError
from ghframes.store.codec import FRAMES_PER_CHUNK
from ghframes.store.geometry import COLS, ROWS
from ghframes.store.planes import SegmentDecoder
from ghframes.store.reader import Chunks
from ghframes.store.segments import Source

from .chars import ASCII_LIMIT, BMP_TABLE, action_ids, char_ids


class Part:
    """One row group's chunks as a batch takes them: action ids int64 [frames], cursor int64
    [frames, 2], dt uint16 [frames] ms (None: a shard before frames 1.3, which has no times;
    all from the part's first frame, `first`), and the frames and colour planes still
    compressed, decoded by `decode` and `plane_into` straight into the batch."""

    def __init__(self, chunks: Chunks, decoder: SegmentDecoder | None = None) -> None:
        self.chunks, self.path = chunks, chunks.path
        self.decoder = decoder or SegmentDecoder()
        self.first = int(chunks.first_frame[0]) if len(chunks) else 0
        flat = chunks.actions.flatten()
        self.actions, bad = action_ids(flat)
        if bad >= 0:
            raise GhframesError(
                f"{self.path}: chunk {chunks.k0 + bad // FRAMES_PER_CHUNK}: "
                f"{flat[bad].as_py()!r} is not an action"
            )
        self.cursor = chunks.cursor.astype(np.int64)
        self.dt = chunks.dt  # a view of the shard's bytes, widened as it is copied into a batch
        # the chunks keep their Arrow actions and cursor too
        held = chunks.actions.nbytes + chunks.cursor.nbytes
        held += 0 if chunks.dt is None else chunks.dt.nbytes
        held += sum(data.size for data, _ in chunks.planes.values())
        self.nbytes = chunks.data.size + self.actions.nbytes + self.cursor.nbytes + held

    def spans(self, key: str, k: int) -> list[tuple[int, int, int, int]]:
        """The segments of chunk k's `key` ("frames" or a colour plane): (first, end) frame in
        the chunk, (start, end) byte; [] for a plane whose values are all 0."""
        if key == "frames":
            return self.chunks.segments(k)
        return self.chunks.plane_spans(k, key)

    def into(self, key: str, k: int, scratch: dict, ascii_, segment: int | None, dest) -> None:
        """Batch values of chunk k's `key` (or of its segment `segment`, an index into
        `spans(key, k)`) into `dest`: character ids for "frames" (`decode`), a colour plane's
        values (`plane_into`)."""
        if key == "frames":
            self.decode(k, dest, scratch, ascii_, segment)
        else:
            self.plane_into(k, key, dest, None if segment is None else self.spans(key, k)[segment])

    def plane_into(self, k: int, name: str, dest: np.ndarray, span=None) -> None:
        """Colour plane `name` of chunk k (or of one of its `chunks.plane_spans(k, name)`) into
        `dest` (uint8 [frames, ROWS, COLS], contiguous): zeros where it is all 0 or absent."""
        spans = self.chunks.plane_spans(k, name) if span is None else [span]
        if not spans:
            dest.fill(0)
            return
        first, where = spans[0][0], self.chunks.where(k)
        for s in spans:
            src = self.chunks.plane_source(name, s)
            table, index = self.decoder.rows(src, s[1] - s[0], 1, where, name)
            gather_rows(table, index, dest[s[0] - first : s[1] - first])

    def has_rows(self, key: str) -> bool:
        """Whether `key` is stored as changed rows (`rows` applies): the colour planes, and the
        frames of frames schema 2.0 (1.x: whole frames)."""
        return key != "frames" or self.chunks.rows_coded

    def rows(self, key: str, k: int, segment: int) -> tuple[np.ndarray, np.ndarray]:
        """Segment `segment` of chunk k's `key` (an index into `spans(key, k)`; `has_rows(key)`)
        as the rows a batch gathers from (planes.py): (values uint8 [rows, COLS], character ids
        for "frames"; index int32 [frames, ROWS] into them), arrays of their own."""
        where = self.chunks.where(k)
        if key == "frames":
            s = self.chunks.segments(k)[segment]
            src, size = Source.of(self.chunks.data, s[2], s[3]), self.chunks.dtype(k).itemsize
        else:
            s = self.chunks.plane_spans(k, key)[segment]
            src, size = self.chunks.plane_source(key, s), 1
        table, index = self.decoder.rows(src, s[1] - s[0], size, where, key)
        values = _ids(table) if key == "frames" else table
        return (values.copy() if values is table else values), index  # table: decoder's buffer

    def decode(
        self,
        k: int,
        dest: np.ndarray,
        scratch: dict,
        ascii_: np.ndarray,
        segment: int | None = None,
    ) -> None:
        """Character ids of chunk k (or of its segment `segment`, an index into
        `chunks.segments(k)`) into `dest` (uint8 [frames, ROWS, COLS], contiguous).
        `ascii_[k, 0]` (the chunk) and `ascii_[k, 1 + j]` (its segment j) remember whether the
        cells are all below 128 (1), not (2) or not yet known (0): frames seen before skip the
        scan for Latin-1 (frames 1.x; a row-coded chunk, 2.0, maps its few distinct rows)."""
        size = self.chunks.dtype(k).itemsize
        if self.chunks.rows_coded:
            spans = (
                self.chunks.segments(k) if segment is None else [self.chunks.segments(k)[segment]]
            )
            first, where = spans[0][0], self.chunks.where(k)
            for s in spans:
                src = Source.of(self.chunks.data, s[2], s[3])
                table, index = self.decoder.rows(src, s[1] - s[0], size, where, "frames")
                gather_rows(_ids(table), index, dest[s[0] - first : s[1] - first])
            return
        if size == 1:
            target = dest
        else:
            buf = scratch.get(size)
            if buf is None or buf.shape[0] < dest.shape[0]:
                buf = scratch[size] = np.empty((max(256, dest.shape[0]), ROWS, COLS), f"<u{size}")
            target = buf[: dest.shape[0]]
        part = None if segment is None else self.chunks.segments(k)[segment]
        self.chunks.decode_into(k, target, part)
        if size == 1:
            j = 0 if segment is None else 1 + segment
            seen = 1 if ascii_[k, 0] == 1 else ascii_[k, j]
            if not seen:
                seen = ascii_[k, j] = 2 if dest.max() >= ASCII_LIMIT else 1
                if segment is None and seen == 1:  # then every segment of it is ASCII too
                    ascii_[k] = 1
            if seen == 2:  # Latin-1 cells: bucketed ids
                np.take(BMP_TABLE, dest.copy(), out=dest)
        else:
            char_ids(target, out=dest)


def _ids(table: np.ndarray) -> np.ndarray:
    """A row table's code points as character ids (uint8; the table itself when all ASCII)."""
    if table.dtype.itemsize > 1:
        return char_ids(table)
    if table.max() >= ASCII_LIMIT:  # Latin-1 cells: bucketed ids
        return BMP_TABLE[table]
    return table


def gather_rows(table: np.ndarray, index: np.ndarray, dest: np.ndarray) -> None:
    """dest[t, y] = table[index[t, y]]: `table` uint8 [k, COLS], `index` int32 [n, ROWS], `dest`
    uint8 [n, ROWS, COLS], contiguous."""
    # profiled: torch's gather of rows (as int64 words) takes half the time of numpy's take
    torch.index_select(
        torch.from_numpy(np.ascontiguousarray(table).view(np.int64)),
        0,
        torch.from_numpy(index.reshape(-1)),
        out=torch.from_numpy(dest.reshape(-1, COLS).view(np.int64)),
    )


def fill_from_segments(
    spans, c0: int, a: int, z: int, dest, decode, cache: dict, key, ident, rows=None
):
    """Frames [a, z) of a chunk whose first frame is c0 into `dest`, from the chunk's segments
    `spans` ((first, end, ...) frames in the chunk, in order): a segment inside [a, z) is decoded
    straight in (`decode(j, out)`, out uint8 [its frames, ROWS, COLS]). One that straddles a or z
    is decoded once into `cache[key]`, marked `(ident, j)` (a lane's next batch takes the rest
    from there): given `rows` (Part.rows of a key stored as rows), as its rows, from which only
    the frames asked for are gathered; else whole, then copied. No spans (a plane all 0): zeros."""
    if not spans:
        dest.fill(0)
    for j, span in enumerate(spans):
        p0, p1 = c0 + span[0], c0 + span[1]
        u, v = max(a, p0), min(z, p1)
        if u >= v:
            continue
        if u == p0 and v == p1:
            decode(j, dest[u - a : v - a])
            continue
        cached = cache.get(key)
        if rows is not None:
            if cached is None or cached[0] != (ident, j):
                cache.pop(key, None)  # a failed decode leaves no stale entry
                cache[key] = cached = ((ident, j), rows(j))
            table, index = cached[1]
            gather_rows(table, index[u - p0 : v - p0], dest[u - a : v - a])
            continue
        if cached is None or cached[0] != (ident, j):
            buf = cached[1] if cached is not None else None
            if buf is None or buf.shape[0] < p1 - p0:
                buf = np.empty((max(FRAMES_PER_CHUNK, p1 - p0), ROWS, COLS), np.uint8)
            cache.pop(key, None)  # a failed decode leaves no stale entry
            decode(j, buf[: p1 - p0])
            cache[key] = cached = ((ident, j), buf)
        dest[u - a : v - a] = cached[1][u - p0 : v - p0]
