"""Frame codec: chunks of consecutive frames as one zstd blob of the narrowest unsigned dtype.

A chunk is `num_frames` consecutive frames, `[num_frames, ROWS, COLS]` code points in C order,
stored as little-endian uint8 when every code point is below 256, else uint16 (the Basic
Multilingual Plane), else uint32, and compressed as concatenated zstd frames (segments) of
`FRAMES_PER_SEGMENT` frames each (the last may hold fewer). Consecutive frames differ in a few
cells, so zstd's matches at a distance of one frame make a typing frame cost tens of bytes;
decoding a chunk is one zstd call (libzstd decodes concatenated frames in one go) and a view.
`decode_chunk` returns a new (read-only) array; `ZSTD.into` decodes straight into an array the
caller owns (the training loader's batch), through libzstd when it loads.

Why segments: a reader that needs only some of a chunk's frames (a training batch ending
inside it) decodes only the segments that hold them, straight into place. Measured on rendered
typing sessions: 9.8 bytes/frame for one zstd frame per 256-frame chunk, 11.7 with segments of
128 (the price of restarting the match history), 15.9 with segments of 64. Chunks written as one
zstd frame (before segments) are read the same way: a chunk of one segment.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import numpy as np
import zstandard

from ghframes.errors import GhframesError
from ghframes.store.geometry import COLS, ROWS

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


def dtype_of(itemsize: int, where: str) -> np.dtype:
    """The dtype of a chunk's cells for its `frame_itemsize`; an itemsize the format has not is
    refused, naming `where`."""
    dtype = DTYPES.get(itemsize)
    if dtype is None:
        raise GhframesError(f"{where}: frame itemsize {itemsize} is not 1, 2 or 4")
    return dtype


def decode_chunk(blob, itemsize: int, num_frames: int, where: str = "chunk") -> np.ndarray:
    """The frames of a chunk (`blob`: bytes or a memoryview of them): `[num_frames, ROWS, COLS]`
    of the chunk's dtype (read-only view)."""
    dtype = dtype_of(itemsize, where)
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


class Zstd:
    """One-shot zstd decompression into a numpy array (libzstd through ctypes; else a copy)."""

    def __init__(self) -> None:
        self.pid = -1
        self.lib = None
        name = ctypes.util.find_library("zstd")
        if name:
            try:
                lib = ctypes.CDLL(name)
                lib.ZSTD_createDCtx.restype = ctypes.c_void_p
                lib.ZSTD_decompressDCtx.restype = ctypes.c_size_t
                lib.ZSTD_decompressDCtx.argtypes = [
                    ctypes.c_void_p,
                    ctypes.c_void_p,
                    ctypes.c_size_t,
                    ctypes.c_void_p,
                    ctypes.c_size_t,
                ]
                lib.ZSTD_findFrameCompressedSize.restype = ctypes.c_size_t
                lib.ZSTD_findFrameCompressedSize.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
                lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
                lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
                lib.ZSTD_getErrorName.restype = ctypes.c_char_p
                self.lib = lib
            except (OSError, AttributeError):
                self.lib = None
        self.py = zstandard.ZstdDecompressor()

    def into(self, src_addr: int, src_len: int, src_view, dest: np.ndarray) -> str | None:
        """Decompress the zstd frames at src into `dest` (contiguous; its size exactly); the
        error, or None."""
        if self.lib is not None:
            if self.pid != os.getpid():  # a DataLoader worker: a context of its own
                self.ctx, self.pid = self.lib.ZSTD_createDCtx(), os.getpid()
            got = self.lib.ZSTD_decompressDCtx(
                self.ctx, dest.ctypes.data, dest.nbytes, src_addr, src_len
            )
            if self.lib.ZSTD_isError(got):
                return self.lib.ZSTD_getErrorName(got).decode()
        else:
            try:
                reader = self.py.stream_reader(src_view, read_across_frames=True)
                got = reader.readinto(dest.reshape(-1).view(np.uint8))
                while got < dest.nbytes and (
                    more := reader.readinto(memoryview(dest.reshape(-1).view(np.uint8))[got:])
                ):
                    got += more
                if got == dest.nbytes and reader.read(1):
                    got += 1
            except zstandard.ZstdError as exc:
                return str(exc)
        if got != dest.nbytes:
            return f"decode to {got} bytes, expected {dest.nbytes}"
        return None

    def segments(self, src_addr: int, src_len: int, src_view) -> list[tuple[int, int]]:
        """(start, end) byte offsets of each zstd frame at src (segments_of's answer)."""
        if self.lib is None:
            return segments_of(src_view)
        out, at = [], 0
        while at < src_len:
            n = self.lib.ZSTD_findFrameCompressedSize(src_addr + at, src_len - at)
            if self.lib.ZSTD_isError(n):
                raise GhframesError(self.lib.ZSTD_getErrorName(n).decode())
            out.append((at, at + n))
            at += n
        return out


ZSTD = Zstd()
