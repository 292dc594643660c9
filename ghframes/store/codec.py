"""Frame codec: a chunk's frames (code points of the narrowest unsigned dtype), its cursor.

A chunk is `num_frames` consecutive frames, `[num_frames, ROWS, COLS]` code points in C order,
stored as little-endian uint8 when every code point is below 256, else uint16 (the Basic
Multilingual Plane), else uint32 (`frame_itemsize`). Since frames schema 2.0 the frames are
row-coded as the colour planes are (store/planes.py: per segment of FRAMES_PER_SEGMENT frames,
the rows that change); shards of 1.x hold them as they are, compressed as concatenated zstd
frames of FRAMES_PER_SEGMENT frames (1.0: one zstd frame per chunk), which `decode_chunk` reads
with `rows=False`. The cursor is delta-coded within its chunk since 2.0 (`encode_cursor`).

Why segments (store/segments.py): a reader that needs only some of a chunk's frames (a training
batch ending inside it) decodes only the segments that hold them. Measured on rendered typing
sessions of frames 1.1 (whole frames): 9.8 bytes/frame for one zstd frame per 256-frame chunk,
11.7 with segments of 128 (the price of restarting the match history), 15.9 with segments of 64.
"""

from __future__ import annotations

import numpy as np
import zstandard

from ghframes.errors import GhframesError
from ghframes.store.geometry import COLS, ROWS
from ghframes.store.planes import DTYPES, SegmentDecoder, decode_rows, encode_rows
from ghframes.store.segments import FRAMES_PER_CHUNK, FRAMES_PER_SEGMENT, ZSTD, segments_of

__all__ = [
    "DTYPES",
    "FRAMES_PER_CHUNK",
    "FRAMES_PER_SEGMENT",
    "ZSTD",
    "decode_chunk",
    "decode_cursors",
    "dtype_of",
    "encode_chunk",
    "encode_cursor",
    "itemsize_for",
    "segments_of",
]

_decompressor = zstandard.ZstdDecompressor()


def itemsize_for(frames: np.ndarray) -> int:
    """Bytes per cell needed for `frames` (any shape of code points)."""
    top = int(frames.max()) if frames.size else 0
    return 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4


def encode_chunk(frames: np.ndarray) -> tuple[int, bytes]:
    """`frames: uint32 [n, ROWS, COLS]` -> (itemsize, the row-coded blob of the narrowed array)."""
    itemsize = itemsize_for(frames)
    return itemsize, encode_rows(np.ascontiguousarray(frames, dtype=DTYPES[itemsize]))


def dtype_of(itemsize: int, where: str) -> np.dtype:
    """The dtype of a chunk's cells for its `frame_itemsize`; an itemsize the format has not is
    refused, naming `where`."""
    dtype = DTYPES.get(itemsize)
    if dtype is None:
        raise GhframesError(f"{where}: frame itemsize {itemsize} is not 1, 2 or 4")
    return dtype


def decode_chunk(
    blob,
    itemsize: int,
    num_frames: int,
    where: str = "chunk",
    rows: bool = True,
    decoder: SegmentDecoder | None = None,
) -> np.ndarray:
    """The frames of a chunk (`blob`: bytes or a memoryview of them): `[num_frames, ROWS, COLS]`
    of the chunk's dtype (read-only). `rows`: the blob is row-coded (frames 2.0); False: whole
    frames (1.x)."""
    dtype = dtype_of(itemsize, where)
    if rows:
        out = decode_rows(blob, num_frames, itemsize, where, "frames", decoder)
        out.flags.writeable = False
        return out
    expected = num_frames * ROWS * COLS * itemsize
    try:
        # read_across_frames: every segment, not only the first; one byte more shows excess
        raw = _decompressor.stream_reader(blob, read_across_frames=True).read(expected + 1)
    except zstandard.ZstdError as exc:
        raise GhframesError(f"{where}: frames do not decompress ({exc})") from None
    if len(raw) != expected:
        raise GhframesError(
            f"{where}: frames decode to {len(raw)} bytes, expected {expected} "
            f"({num_frames} frames of {ROWS}x{COLS}x{itemsize})"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(num_frames, ROWS, COLS)


def encode_cursor(cursor: np.ndarray) -> bytes:
    """`cursor: uint8 [n, 2]` (row, col) -> the chunk's `cursor` value (frames schema 2.0): the
    first position as it is, each later one as its difference from the one before, mod 256."""
    cursor = np.asarray(cursor, dtype=np.uint8)
    delta = cursor.copy()
    np.subtract(cursor[1:], cursor[:-1], out=delta[1:])  # uint8: wraps around, mod 256
    return delta.tobytes()


def decode_cursors(delta: np.ndarray, first) -> np.ndarray:
    """The positions (uint8 [T, 2]) of chunks whose delta-coded `cursor` values are concatenated
    in `delta` (uint8 [T, 2]), chunk j starting at row `first[j]` (ints, increasing, from 0)."""
    total = np.cumsum(delta, axis=0, dtype=np.uint8)  # running sums mod 256, over all chunks
    starts = np.asarray(first, dtype=np.int64)
    # each chunk's sums restart at its first row: less the running sum before it
    before = np.zeros((len(starts), 2), np.uint8)
    before[1:] = total[starts[1:] - 1]
    counts = np.diff(np.append(starts, len(delta)))
    return total - np.repeat(before, counts, axis=0)
