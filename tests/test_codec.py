"""The frame codec: the narrowest dtype, zstd segments of 128 frames, one clear error for a cut blob."""

from __future__ import annotations

import numpy as np
import pytest

from ghframes.errors import GhframesError
from ghframes.store.codec import decode_chunk, encode_chunk, segments_of


def test_codec_picks_the_narrowest_dtype():
    frames = np.full((3, 48, 160), 32, dtype=np.uint32)
    assert encode_chunk(frames)[0] == 1
    frames[1, 2, 3] = ord("中")
    itemsize, blob = encode_chunk(frames)
    assert itemsize == 2 and (decode_chunk(blob, 2, 3) == frames).all()
    frames[2, 0, 0] = 0x1F600
    itemsize, blob = encode_chunk(frames)
    assert itemsize == 4 and (decode_chunk(blob, 4, 3) == frames).all()


def test_chunks_are_segments_of_128_frames():
    """Each 128 frames of a chunk are a zstd frame of their own (a reader can decode half a
    chunk); the whole blob still decodes in one call, and a cut blob is one clear error."""
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(32, 127, (1, 48, 160)), 256, 0).astype(np.uint32)
    frames[np.arange(256), 5, np.arange(256) % 160] = ord("x")  # typing: one cell a frame
    itemsize, blob = encode_chunk(frames)
    segments = segments_of(blob)
    assert len(segments) == 2 and segments[0][0] == 0 and segments[-1][1] == len(blob)
    assert (decode_chunk(blob, itemsize, 256) == frames).all()
    first = blob[segments[0][0] : segments[0][1]]
    assert (decode_chunk(first, itemsize, 128) == frames[:128]).all()
    assert len(segments_of(encode_chunk(frames[:100])[1])) == 1
    with pytest.raises(GhframesError, match=r"^c: frames decode to \d+ bytes, expected"):
        decode_chunk(blob[: segments[0][1]], itemsize, 256, "c")


def test_code_point_256_needs_two_bytes():
    """255 is the top of uint8: a chunk whose top code point is U+0100 is stored as uint16, not
    wrapped to U+0000."""
    frames = np.full((2, 48, 160), 32, dtype=np.uint32)
    frames[0, 0, 0] = 255
    assert encode_chunk(frames)[0] == 1
    frames[1, 47, 159] = 256
    itemsize, blob = encode_chunk(frames)
    assert itemsize == 2
    decoded = decode_chunk(blob, itemsize, 2)
    assert decoded[1, 47, 159] == 256 and (decoded == frames).all()
    frames[1, 47, 159] = 1 << 16  # likewise at the top of uint16
    itemsize, blob = encode_chunk(frames)
    assert itemsize == 4 and (decode_chunk(blob, itemsize, 2) == frames).all()


def test_bytes_past_the_expected_frames_are_refused():
    """A blob that decodes to more than its num_frames (one segment too many) is damaged, not
    read up to the expected length and the rest ignored; by the loader's decoder as well."""
    from ghframes.store.codec import ZSTD

    frames = np.full((3, 48, 160), ord("a"), dtype=np.uint32)
    itemsize, blob = encode_chunk(frames)
    extra = blob + encode_chunk(frames[:1])[1]
    with pytest.raises(GhframesError, match=r"^c: frames decode to \d+ bytes, expected \d+ \(3 "):
        decode_chunk(extra, itemsize, 3, "c")
    assert (decode_chunk(blob, itemsize, 3) == frames).all()
    dest = np.empty((3, 48, 160), np.uint8)
    source = np.frombuffer(extra, np.uint8)
    assert ZSTD.into(source.ctypes.data, len(extra), memoryview(extra), dest) is not None
    source = np.frombuffer(blob, np.uint8)
    assert ZSTD.into(source.ctypes.data, len(blob), memoryview(blob), dest) is None
    assert (dest == frames).all()
