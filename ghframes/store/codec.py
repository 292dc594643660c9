"""Frame codec: chunks of consecutive frames as one zstd blob of the narrowest unsigned dtype.

A chunk is `num_frames` consecutive frames, `[num_frames, ROWS, COLS]` code points in C order,
stored as little-endian uint8 when every code point is below 256, else uint16 (the Basic
Multilingual Plane), else uint32, and compressed as concatenated zstd frames (segments) of
`FRAMES_PER_SEGMENT` frames each (the last may hold fewer). Consecutive frames differ in a few
cells, so zstd's matches at a distance of one frame make a typing frame cost tens of bytes;
decoding a chunk is one zstd call (libzstd decodes concatenated frames in one go) and a view.

Why segments: a reader that needs only some of a chunk's frames (a training batch ending
inside it) decodes only the segments that hold them, straight into place. Measured on rendered
typing sessions: 9.8 bytes/frame for one zstd frame per 256-frame chunk, 11.7 with segments of
128 (the price of restarting the match history), 15.9 with segments of 64. Chunks written as one
zstd frame (before segments) are read the same way: a chunk of one segment.
"""

from __future__ import annotations

import numpy as np
import zstandard

from ghframes.errors import GhframesError
from ghframes.render.terminal import COLS, ROWS

FRAMES_PER_CHUNK = 256
FRAMES_PER_SEGMENT = 128  # frames per zstd frame inside a chunk's blob
LEVEL = 6  # measured: levels above 6 gain <3% on typing sessions at several times the cost
DTYPES = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}

_compressor = zstandard.ZstdCompressor(level=LEVEL, write_content_size=True, threads=0)
_decompressor = zstandard.ZstdDecompressor()


def itemsize_for(frames: np.ndarray) -> int:
    """Bytes per cell needed for `frames` (any shape of code points)."""
    top = int(frames.max()) if frames.size else 0
    return 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4


def encode_chunk(frames: np.ndarray) -> tuple[int, bytes]:
    """`frames: uint32 [n, ROWS, COLS]` → (itemsize, zstd blob of the narrowed array)."""
    itemsize = itemsize_for(frames)
    narrow = np.ascontiguousarray(frames, dtype=DTYPES[itemsize])
    starts = range(0, max(len(narrow), 1), FRAMES_PER_SEGMENT)
    return itemsize, b"".join(
        _compressor.compress(narrow[i : i + FRAMES_PER_SEGMENT].data) for i in starts
    )


def segments_of(blob) -> list[tuple[int, int]]:
    """(start, end) byte offsets of each zstd frame in `blob`, in order."""
    view = memoryview(blob)
    out, at = [], 0
    try:
        while at < len(view):
            obj = _decompressor.decompressobj()
            obj.decompress(view[at:])  # up to this frame's end; the rest is unused_data
            if not obj.eof:
                raise GhframesError("the last zstd frame is truncated")
            end = len(view) - len(obj.unused_data)
            out.append((at, end))
            at = end
    except zstandard.ZstdError as exc:
        raise GhframesError(str(exc)) from None
    return out


def decode_chunk(blob: bytes, itemsize: int, num_frames: int, where: str = "chunk") -> np.ndarray:
    """The frames of a chunk: `[num_frames, ROWS, COLS]` of the chunk's dtype (read-only view)."""
    dtype = DTYPES.get(itemsize)
    if dtype is None:
        raise GhframesError(f"{where}: frame itemsize {itemsize} is not 1, 2 or 4")
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
