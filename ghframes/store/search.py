"""Find text on terminal screens: the frames whose rows, read as typed, contain a string.

`LazySession.search` (chunks.py) walks a session's chunks with `find_in_frames`; the viewer's
`/` key is its user.
"""

from __future__ import annotations

import numpy as np

from ghframes.store.geometry import COLS, ROWS, WIDE_STUB

FRAME_CELLS = ROWS * COLS


class SearchCancelled(Exception):
    """A search stopped by its `cancel` callback before reading frame `frame`."""

    def __init__(self, frame: int) -> None:
        super().__init__(f"search cancelled before frame {frame}")
        self.frame = frame


def find_in_frames(
    frames: np.ndarray, needle: list[int], lo: int, hi: int, last: bool = False
) -> int | None:
    """The first (or `last`) index in [lo, hi) of `frames: uint8|uint16|uint32 [n, ROWS, COLS]`
    with a row whose text, read without wide-character stubs, contains `needle` (code points,
    none a stub, each fitting the dtype); None when none has.

    Vectorised over the range (measured on the 2-core VM: Python's bytes.find over a uint16
    chunk runs at ~300 MB/s, as its skip table is useless on text that is mostly spaces and
    zero bytes; numpy compares at several GB/s). memchr first rejects most ranges outright.
    """
    if lo >= hi:
        return None
    raw = _bytes_of(frames)
    size = frames.itemsize
    begin, end = lo * FRAME_CELLS * size, hi * FRAME_CELLS * size
    # a needle character whose low byte occurs nowhere in the range is not on any screen
    for code in set(needle):
        if code & 0xFF and raw.find(bytes((code & 0xFF,)), begin, end) < 0:
            return None
    window = frames[lo:hi]
    # WIDE_STUB is 0: memchr finds one in uint8 chunks, numpy's all() in wider ones
    has_stub = raw.find(b"\0", begin, end) >= 0 if size == 1 else not window.all()
    if has_stub:
        window = _without_stubs(window)
    cells = window.reshape(-1)
    m = len(needle)
    # anchor on the needle's rarest character, judged on the range's first and last frames
    sample = np.concatenate([window[0], window[-1]])
    rarity = {code: np.count_nonzero(sample == code) for code in set(needle)}
    j = min(range(m), key=lambda i: rarity[needle[i]])
    at = np.flatnonzero(cells == needle[j])
    col = at % COLS
    at = at[(col >= j) & (col - j + m <= COLS)] - j  # match starts whose match stays in the row
    for i, code in enumerate(needle):
        if i != j and at.size:
            at = at[cells[at + i] == code]
    if not at.size:
        return None
    return lo + int(at[-1 if last else 0]) // FRAME_CELLS


def _without_stubs(frames: np.ndarray) -> np.ndarray:
    """`frames [n, ROWS, COLS]` with each row's stubs taken out and its text moved left over
    them, stubs filling the row's end: the rows as the search reads them."""
    rows = frames.reshape(-1, COLS)
    stubbed = np.flatnonzero((rows == WIDE_STUB).any(axis=1))
    sub = rows[stubbed]
    keep = sub != WIDE_STUB
    packed = np.full_like(sub, WIDE_STUB)
    row_of, _ = np.nonzero(keep)
    packed[row_of, np.cumsum(keep, axis=1)[keep] - 1] = sub[keep]
    out = rows.copy()
    out[stubbed] = packed
    return out.reshape(frames.shape)


def _bytes_of(frames: np.ndarray) -> bytes:
    """The bytes under `frames`: a decoded chunk is a view of the decoder's bytes (no copy)."""
    base = frames
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, bytes) and len(base) == frames.nbytes and frames.flags.c_contiguous:
        return base
    return frames.tobytes()
