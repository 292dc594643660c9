"""Row coding: a chunk's cells (its `frames`, or a colour plane `fg`, `bg`, `attrs`) stored as
the rows that change (frames schema 2.0).

Cells are `[num_frames, ROWS, COLS]` of an unsigned dtype (`frames`: uint8/16/32 code points, a
plane: uint8). A blob is b"" when every cell of the chunk is 0; else one zstd frame per segment of
`FRAMES_PER_SEGMENT` frames (store/segments.py), each decompressing to

    rows     [k, COLS] cells: every row that differs from the same row of the frame before (for
             the segment's first frame: from a row of zeros), in frame order, then row order;
    changed  ceil(n * ROWS / 8) bytes: np.packbits (most significant bit first) of a bool
             [n, ROWS] in C order, set at (t, y) where row y of frame t is in `rows` (k bits).

Row y of frame t is the entry of `rows` of the last set bit of column y at or before t, or
zeros where there is none: a segment decodes alone, with one gather of rows.

Why, measured on the render benchmark's history (39 k frames of the human typist, the editor's
Pygments colours; bytes/frame in the shard, segments of 128 frames): characters 12.7 stored as
they are (frames 1.x, zstd level 6), 11.2 as changed rows; fg and attrs 13.7 and 20.1 as they
are, 3.7 and 2.0 XORed with the frame before (both zstd level 6), 3.2 and 1.4 as changed rows
(level 9). zstd on whole planes loses its way in their long runs of zeros (every zero looks alike
to its match finder, which rarely reaches the same cell one frame back); XOR costs a pass in
frame order to undo (under 0.7 M frames/s a plane in numpy); changed rows compress well,
compress fast (only the changed rows go through zstd: 5.9 us/frame for the characters against
11.2 as whole frames) and decode with one gather of rows. The price: a segment's gather and
its index cost more than zstd writing whole frames straight into place (the loader's
characters alone: about 0.6-0.7 M frames/s against 0.9-1.0 M for frames 1.x, one process, the
same 2-core machine and load).
"""

from __future__ import annotations

import numpy as np
import zstandard

from ghframes.errors import GhframesError
from ghframes.store.geometry import COLS, ROWS
from ghframes.store.segments import (
    FRAMES_PER_SEGMENT,
    ZSTD,
    Source,
    not_decompressing,
    segment_spans,
)

PLANES = ("fg", "bg", "attrs")  # the colour columns of schemas/frames.json, in this order
# measured on fg (Pygments colours): level 6 gives 4.1 B/frame, 9 3.9, 12 3.7 in twice 9's time
LEVEL = 9
DTYPES = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}

_compressor = zstandard.ZstdCompressor(level=LEVEL, write_content_size=True)


def mask_bytes(n: int) -> int:
    """Bytes of the `changed` bits of a segment of n frames."""
    return -(-n * ROWS // 8)


def changed_rows(segment: np.ndarray) -> np.ndarray:
    """bool [n, ROWS]: where row y of frame t differs from row y of frame t - 1 (of frame 0: from
    zeros). `segment`: [n, ROWS, COLS] cells, C-contiguous."""
    words = segment.view(np.uint64)  # (n, ROWS, COLS * itemsize / 8): rows 8 bytes at a time
    changed = np.empty(segment.shape[:2], bool)
    changed[0] = words[0].any(axis=1)
    np.any(words[1:] != words[:-1], axis=2, out=changed[1:])
    return changed


def encode_rows(cells: np.ndarray) -> bytes:
    """`cells: [n, ROWS, COLS]` of a little-endian unsigned dtype -> their blob (module
    docstring): b"" when every cell is 0."""
    cells = np.ascontiguousarray(cells)
    parts, any_rows = [], False
    for i in range(0, max(len(cells), 1), FRAMES_PER_SEGMENT):
        segment = cells[i : i + FRAMES_PER_SEGMENT]
        changed = changed_rows(segment)
        any_rows = any_rows or bool(changed.any())
        parts.append(_compressor.compress(segment[changed].tobytes() + np.packbits(changed).data))
    return b"".join(parts) if any_rows else b""


def encode_plane(plane: np.ndarray) -> bytes:
    """A colour plane, `uint8 [n, ROWS, COLS]`, as its column's blob."""
    return encode_rows(np.asarray(plane, dtype=np.uint8))


class SegmentDecoder:
    """Decodes one segment at a time into a reused buffer per cell size: a row of zeros, then
    the segment's rows (so that entry 0 is the zero row), then its `changed` bits."""

    def __init__(self) -> None:
        self._buffers: dict[int, np.ndarray] = {}

    def rows(
        self, src: Source, n: int, itemsize: int, where: str, name: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The segment `src` (its zstd frame) of n frames of `itemsize`-byte cells ->
        (table [k + 1, COLS] of that dtype, row 0 zeros; index int32 [n, ROWS] into it), views
        of this decoder's buffer; errors name `where` and the column `name`."""
        row_bytes, nb = COLS * itemsize, mask_bytes(n)
        buffer = self._buffers.get(itemsize)
        if buffer is None:
            size = row_bytes * (1 + FRAMES_PER_SEGMENT * ROWS) + mask_bytes(FRAMES_PER_SEGMENT)
            buffer = self._buffers[itemsize] = np.zeros(size, np.uint8)
        got = ZSTD.into_at_most(
            src.address, src.size, src.view, buffer[row_bytes : row_bytes * (1 + n * ROWS) + nb]
        )
        if isinstance(got, str):
            raise not_decompressing(where, name, got)
        k, rest = divmod(got - nb, row_bytes)
        index = None
        if got >= nb and not rest:
            bits = buffer[row_bytes * (1 + k) : row_bytes * (1 + k) + nb]
            changed = np.unpackbits(bits, count=n * ROWS).view(bool)
            # entry e of the table is the e-th set bit; each cell takes the last one of its row
            index = np.cumsum(changed, dtype=np.int32)
        if index is None or index[-1] != k:
            raise GhframesError(
                f"{where}: {name}: a segment of {n} frames decodes to {got} bytes, not rows of "
                f"{row_bytes} bytes and the {nb} bytes of changed-row bits that count them"
            )
        index *= changed
        index = index.reshape(n, ROWS)
        np.maximum.accumulate(index, axis=0, out=index)
        table = buffer[: row_bytes * (k + 1)].view(DTYPES[itemsize]).reshape(k + 1, COLS)
        return table, index

    def into(self, src: Source, dest: np.ndarray, where: str, name: str) -> None:
        """The segment `src` into `dest` ([n, ROWS, COLS] cells, contiguous; its dtype says the
        cells' size)."""
        table, index = self.rows(src, len(dest), dest.dtype.itemsize, where, name)
        # profiled: rows as uint64 words and int32 indices take ~15% less time than bytes
        words = dest.reshape(len(dest) * ROWS, -1).view(np.uint64)
        np.take(table.view(np.uint64), index.reshape(-1), axis=0, out=words)


def decode_rows(
    blob,
    num_frames: int,
    itemsize: int,
    where: str,
    name: str,
    decoder: SegmentDecoder | None = None,
) -> np.ndarray:
    """A blob (as `encode_rows` makes it: bytes or a numpy uint8 array) -> its cells,
    `[num_frames, ROWS, COLS]` of `itemsize` bytes each; `decoder`: one to reuse."""
    out = np.zeros((num_frames, ROWS, COLS), DTYPES[itemsize])
    if not len(blob):
        return out
    data = np.frombuffer(blob, np.uint8)
    decoder = decoder or SegmentDecoder()
    for first, end, lo, hi in segment_spans(Source.of(data), num_frames, where, name):
        decoder.into(Source.of(data, lo, hi), out[first:end], where, name)
    return out


def decode_plane(
    blob, num_frames: int, where: str = "chunk", decoder: SegmentDecoder | None = None
) -> np.ndarray:
    """A colour plane's blob -> uint8 [num_frames, ROWS, COLS]."""
    return decode_rows(blob, num_frames, 1, where, "plane", decoder)
