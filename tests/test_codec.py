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
