"""A row group of a frame shard as the training loader takes it: ids, cursor, dt, frames.

`Part(chunks)` turns the reader's `Chunks` (ghframes.store.reader) into what a batch copies:
action ids, cursor positions and each action's time; its frames stay compressed until `decode`
writes character ids (chars.py) straight into the batch.
"""

from __future__ import annotations

import numpy as np

from ghframes.errors import GhframesError
from ghframes.store.codec import FRAMES_PER_CHUNK
from ghframes.store.geometry import COLS, ROWS
from ghframes.store.reader import Chunks

from .chars import ASCII_LIMIT, BMP_TABLE, action_ids, char_ids


class Part:
    """One row group's chunks as a batch takes them: action ids int64 [frames], cursor int64
    [frames, 2], dt uint16 [frames] ms (None: a shard before frames 1.3, which has no times;
    all from the part's first frame, `first`), and the frames still compressed, decoded by
    `decode` straight into the batch."""

    def __init__(self, chunks: Chunks) -> None:
        self.chunks, self.path = chunks, chunks.path
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
        self.nbytes = chunks.data.size + self.actions.nbytes + self.cursor.nbytes + held

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
        scan for Latin-1."""
        size = self.chunks.dtype(k).itemsize
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
