"""zstd segments: the frame layout of a chunk's blobs, and one-shot decompression into arrays.

A chunk (FRAMES_PER_CHUNK frames, fewer in a session's last) stores each of its columns of
cells (`frames` and the colour planes) as concatenated zstd frames, one per segment of
FRAMES_PER_SEGMENT frames, so that a reader that needs part of a chunk (a training batch ending
inside it) decodes only the segments that hold it. `ZSTD` decompresses through libzstd (ctypes)
straight into memory the caller owns, else through python-zstandard; `Source` names bytes in
memory as it reads them; `segment_spans` finds and checks a blob's segments.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import numpy as np
import zstandard

from ghframes.errors import GhframesError

FRAMES_PER_CHUNK = 256
FRAMES_PER_SEGMENT = 128  # frames per zstd frame inside a chunk's blob

_decompressor = zstandard.ZstdDecompressor()


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

    def into_at_most(self, src_addr: int, src_len: int, src_view, dest: np.ndarray) -> int | str:
        """Decompress the zstd frames at src into the start of `dest` (contiguous uint8), which
        they must fit; the bytes they make, or the error."""
        if self.lib is not None:
            if self.pid != os.getpid():
                self.ctx, self.pid = self.lib.ZSTD_createDCtx(), os.getpid()
            got = self.lib.ZSTD_decompressDCtx(
                self.ctx, dest.ctypes.data, dest.nbytes, src_addr, src_len
            )
            if self.lib.ZSTD_isError(got):
                return self.lib.ZSTD_getErrorName(got).decode()
            return int(got)
        try:
            raw = self.py.stream_reader(src_view, read_across_frames=True).read(dest.nbytes + 1)
        except zstandard.ZstdError as exc:
            return str(exc)
        if len(raw) > dest.nbytes:
            return f"decodes to more than {dest.nbytes} bytes"
        dest[: len(raw)] = np.frombuffer(raw, np.uint8)
        return len(raw)

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


class Source:
    """Bytes in memory as libzstd reads them: their address, size and a memoryview of them."""

    __slots__ = ("address", "size", "view")

    def __init__(self, address: int, size: int, view: memoryview) -> None:
        self.address, self.size, self.view = address, size, view

    @classmethod
    def of(cls, data, lo: int = 0, hi: int | None = None) -> Source:
        """Bytes [lo, hi) of `data`: a pyarrow Buffer, or a numpy uint8 array."""
        hi = len(data) if hi is None else hi
        address = data.address if hasattr(data, "address") else data.ctypes.data
        return cls(address + lo, hi - lo, memoryview(data)[lo:hi])


def not_decompressing(where: str, name: str, detail: str) -> GhframesError:
    """The error for a column's blob that zstd cannot read: "{where}: frames do not decompress
    (...)", "{where}: fg does not decompress (...)"."""
    verb = "do" if name == "frames" else "does"
    return GhframesError(f"{where}: {name} {verb} not decompress ({detail})")


def segment_spans(
    src: Source, num_frames: int, where: str, name: str, one_allowed: bool = False
) -> list[tuple[int, int, int, int]]:
    """(first, end) frame and (start, end) byte offset in `src` of each segment (zstd frame) of
    column `name`'s blob of a chunk of `num_frames` frames: one per FRAMES_PER_SEGMENT frames, or
    with `one_allowed` a single one for the whole chunk (frames 1.0 wrote no segments); else the
    blob is damaged, and the error names `where` and `name`."""
    try:
        found = ZSTD.segments(src.address, src.size, src.view)
    except GhframesError as exc:
        raise not_decompressing(where, name, str(exc)) from None
    step = FRAMES_PER_SEGMENT if len(found) > 1 or not one_allowed else max(num_frames, 1)
    if len(found) != -(-num_frames // step):
        raise GhframesError(
            f"{where}: {name} in {len(found)} segments for {num_frames} frames "
            f"(expected one per {FRAMES_PER_SEGMENT})"
        )
    return [(s * step, min(s * step + step, num_frames), a, b) for s, (a, b) in enumerate(found)]
