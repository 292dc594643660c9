"""Screen capture into chunks: the terminal's frames, each with its action and cursor.

Frame t is recorded before action t; a chunk is complete when it holds `FRAMES_PER_CHUNK`
frames and their actions. The chunk columns are the frames table's (schemas/frames.json),
less `session`, which the shard writer adds.
"""

from __future__ import annotations

import numpy as np

from ghframes.render.terminal import COLS, ROWS, Terminal
from ghframes.store import schema
from ghframes.store.codec import FRAMES_PER_CHUNK, encode_chunk

CHUNK_COLUMNS = [name for name in schema.load("frames").names if name != "session"]


class Recorder:
    """Feeds output to the terminal and cuts (frame, action, cursor) triples into chunks."""

    def __init__(self) -> None:
        self.terminal = Terminal()
        self.num_frames = 0
        self._frames = np.empty((FRAMES_PER_CHUNK, ROWS, COLS), dtype=np.uint32)
        self._cursor = np.empty((FRAMES_PER_CHUNK, 2), dtype=np.uint8)
        self._actions: list[str] = []
        self._n = 0
        self.chunks: dict[str, list] = {name: [] for name in CHUNK_COLUMNS}

    def frame(self) -> None:
        """Capture the screen as the next frame."""
        terminal = self.terminal
        self._frames[self._n] = terminal.capture()
        self._cursor[self._n] = terminal.cursor
        self._n += 1
        self.num_frames += 1

    def act(self, action: str, output: str | None) -> None:  # profiled: once per keystroke
        """Record `action` for the last frame, feed its output, capture the next frame."""
        self._actions.append(action)
        if self._n == FRAMES_PER_CHUNK:
            self._flush()
        if output is not None:
            self.terminal.feed(output)
            self.frame()

    def _flush(self) -> None:
        n = self._n
        if not n:
            return
        itemsize, blob = encode_chunk(self._frames[:n])
        row = {
            "chunk": len(self.chunks["chunk"]),
            "first_frame": self.num_frames - n,
            "num_frames": n,
            "frame_itemsize": itemsize,
            "frames": blob,
            "actions": self._actions,
            "cursor": self._cursor[:n].tobytes(),
        }
        for name, column in self.chunks.items():
            column.append(row[name])
        self._actions = []
        self._n = 0

    def finish(self) -> dict[str, list]:
        """Flush the last chunk; return the chunk columns."""
        assert len(self._actions) == self._n, "every frame needs its action"
        self._flush()
        return self.chunks
