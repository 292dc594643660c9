"""The frame codec: the narrowest dtype, row-coded zstd segments of 128 frames (frames 2.0), the
whole frames of 1.x, the delta-coded cursor, one clear error for a cut or damaged blob."""

from __future__ import annotations

import numpy as np
import pytest
import zstandard

from ghframes.errors import GhframesError
from ghframes.store.codec import (
    ZSTD,
    decode_chunk,
    decode_cursors,
    encode_chunk,
    encode_cursor,
    segments_of,
)
from ghframes.store.planes import changed_rows, decode_plane, encode_plane, mask_bytes


def whole_frames(frames: np.ndarray) -> bytes:
    """Frames as frames 1.1 to 1.3 stored them: zstd segments of 128 whole frames."""
    c = zstandard.ZstdCompressor(level=6, write_content_size=True)
    return b"".join(c.compress(frames[i : i + 128].tobytes()) for i in range(0, len(frames), 128))


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
    chunk); a cut blob is one clear error."""
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
    with pytest.raises(GhframesError, match=r"^c: frames in 1 segments for 256 frames \(expec"):
        decode_chunk(blob[: segments[0][1]], itemsize, 256, "c")
    with pytest.raises(GhframesError, match=r"^c: frames do not decompress \("):
        decode_chunk(blob[:-3], itemsize, 256, "c")


def test_only_the_rows_that_change_are_stored():
    """A segment holds its first frame's rows that are not all 0 and, after it, each row that
    differs from the frame before (frames 2.0): a chunk that types one cell a frame costs one
    row a frame, its all-zero rows nothing; a plane of zeros is an empty value."""
    frames = np.full((256, 48, 160), 32, np.uint8)
    frames[:, 0, :4] = np.frombuffer(b"tiny", np.uint8)
    frames[np.arange(256), 7, np.arange(256) % 160] = ord("x")
    changed = changed_rows(frames[:128])
    assert changed[0].all() and changed[1:].sum(axis=1).tolist() == [1] * 127
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(encode_chunk(frames)[1])
    assert len(raw) == (48 + 127) * 160 + mask_bytes(128)  # the first segment's rows and bits
    plane = np.zeros((300, 48, 160), np.uint8)
    assert encode_plane(plane) == b"" and not decode_plane(b"", 300).any()
    plane[299, 47, 159] = 16  # the last cell of the last frame: one row of one segment
    blob = encode_plane(plane)
    assert len(segments_of(blob)) == 3 and (decode_plane(blob, 300) == plane).all()


def test_a_segment_whose_rows_and_bits_disagree_is_refused():
    plane = np.zeros((2, 48, 160), np.uint8)
    plane[1, 3] = 9
    c = zstandard.ZstdCompressor()
    bits = np.packbits(changed_rows(plane)).tobytes()
    assert (decode_plane(c.compress(plane[1, 3].tobytes() + bits), 2) == plane).all()
    for raw in (bits, plane[1, 3].tobytes() * 2 + bits, b"\x01"):  # too few, too many, cut
        with pytest.raises(GhframesError, match=r"^c: plane: a segment of 2 frames decodes to"):
            decode_plane(c.compress(raw), 2, "c")


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
    """A blob that holds more than its num_frames (one segment too many) is damaged, not read up
    to the expected length and the rest ignored; whole frames (1.x) too, and by the loader's
    decoder as well."""
    frames = np.full((3, 48, 160), ord("a"), dtype=np.uint32)
    itemsize, blob = encode_chunk(frames)
    extra = blob + encode_chunk(frames[:1])[1]
    with pytest.raises(GhframesError, match=r"^c: frames in 2 segments for 3 frames \(expected"):
        decode_chunk(extra, itemsize, 3, "c")
    assert (decode_chunk(blob, itemsize, 3) == frames).all()
    narrow = frames.astype(np.uint8)
    old = whole_frames(narrow)
    extra = old + whole_frames(narrow[:1])
    assert (decode_chunk(old, 1, 3, rows=False) == frames).all()
    with pytest.raises(GhframesError, match=r"^c: frames decode to \d+ bytes, expected \d+ \(3 "):
        decode_chunk(extra, itemsize, 3, "c", rows=False)
    dest = np.empty((3, 48, 160), np.uint8)
    source = np.frombuffer(extra, np.uint8)
    assert ZSTD.into(source.ctypes.data, len(extra), memoryview(extra), dest) is not None
    source = np.frombuffer(old, np.uint8)
    assert ZSTD.into(source.ctypes.data, len(old), memoryview(old), dest) is None
    assert (dest == frames).all()


def test_the_cursor_is_delta_coded_within_each_chunk():
    """Each chunk's first position as it is, then differences mod 256 (frames 2.0): typing's
    (0, 1) steps, and a step back (a wrap-around), come back exactly chunk by chunk."""
    a = np.array([[5, 10], [5, 11], [5, 12], [4, 0], [47, 159]], np.uint8)
    b = np.array([[0, 3], [0, 2]], np.uint8)
    coded = [np.frombuffer(encode_cursor(x), np.uint8).reshape(-1, 2) for x in (a, b)]
    assert coded[0].tolist() == [[5, 10], [0, 1], [0, 1], [255, 244], [43, 159]]
    both = decode_cursors(np.concatenate(coded), [0, 5])
    assert both.dtype == np.uint8 and both.tolist() == a.tolist() + b.tolist()
