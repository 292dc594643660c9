"""Screen capture into chunks: the terminal's frames, each with its colours, action, cursor
and time.

Frame t is recorded before action t; a chunk is complete when it holds `FRAMES_PER_CHUNK`
frames and their actions. Action t brings its time `dt[t]`: how long frame t was on screen
before it was pressed, in milliseconds (schemas/frames.json, `dt`). Each frame's colour planes
(`fg`, `bg`, `attrs`, frames schema 2.0) are the terminal's (render/terminal.py). The chunk
columns are the frames table's (schemas/frames.json), less `session`, which the shard writer
adds.
"""

from __future__ import annotations

import operator

import numpy as np

from ghframes.render.terminal import COLS, ROWS, Terminal
from ghframes.store import schema
from ghframes.store.codec import FRAMES_PER_CHUNK, encode_chunk, encode_cursor
from ghframes.store.planes import PLANES, encode_plane

CHUNK_COLUMNS = [name for name in schema.load("frames").names if name != "session"]
MAX_DT = 65_535  # ms: the cap of the `dt` column (uint16); a longer pause is stored as this


class Recorder:
    """Feeds output to the terminal and cuts (frame, colours, action, cursor, dt) into chunks.

    colour: capture the colour planes (False: they are recorded as 0, and capture skips them).
    """

    def __init__(self, colour: bool = True) -> None:
        self.terminal = Terminal(colour)
        self.num_frames = 0
        self._frames = np.empty((FRAMES_PER_CHUNK, ROWS, COLS), dtype=np.uint32)
        self._planes = np.zeros((len(PLANES), FRAMES_PER_CHUNK, ROWS, COLS), dtype=np.uint8)
        self._cursor = np.empty((FRAMES_PER_CHUNK, 2), dtype=np.uint8)
        self._dt = np.empty(FRAMES_PER_CHUNK, dtype="<u2")
        self._actions: list[str] = []
        self._n = 0
        self.chunks: dict[str, list] = {name: [] for name in CHUNK_COLUMNS}

    def frame(self) -> None:
        """Capture the screen as the next frame."""
        terminal = self.terminal
        self._frames[self._n] = terminal.capture()
        self._planes[:, self._n] = terminal.planes  # fg, bg, attrs, in the order of PLANES
        self._cursor[self._n] = terminal.cursor
        self._n += 1
        self.num_frames += 1

    def act(self, action: str, output: str | None, dt: int = 100) -> None:  # profiled: per key
        """Record `action` for the last frame, pressed `dt` ms after that frame appeared (an int
        >= 0, stored capped at MAX_DT; 100 until render/session.py passes the typist's times),
        feed its output, capture the next frame."""
        dt = operator.index(dt)  # an int (numpy's too); a float is refused, not truncated
        if dt < 0:
            raise ValueError(f"{action!r}: dt must be >= 0 ms, got {dt}")
        self._dt[self._n - 1] = dt if dt < MAX_DT else MAX_DT
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
            "cursor": encode_cursor(self._cursor[:n]),
            "dt": self._dt[:n].tobytes(),
        }
        for name, plane in zip(PLANES, self._planes, strict=True):
            row[name] = encode_plane(plane[:n])
        for name, column in self.chunks.items():
            column.append(row[name])
        self._actions = []
        self._n = 0

    def finish(self) -> dict[str, list]:
        """Flush the last chunk; return the chunk columns."""
        assert len(self._actions) == self._n, "every frame needs its action"
        self._flush()
        return self.chunks
