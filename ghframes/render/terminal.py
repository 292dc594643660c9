"""Screen capture: a pyte 48×160 terminal fed with program output, read back as code points.

Frames are exactly what pyte shows. Capture is incremental: only the rows pyte marks dirty
are converted, into one reused `uint32 [ROWS, COLS]` array. pyte silently drops escape
sequences it does not know (its `Screen.debug` is a no-op); this terminal counts them instead,
so a renderer can prove it never sent one.
"""

from __future__ import annotations

import numpy as np
import pyte
from pyte.screens import StaticDefaultDict

from ghframes.store.geometry import COLS, ROWS, WIDE_STUB

__all__ = ["COLS", "ROWS", "WIDE_STUB", "Terminal", "text_of"]

_BLANK_ROW = [" "] * (COLS + 1)  # one spare cell: pyte's insert_characters may write column COLS


class _Screen(pyte.Screen):
    """pyte's screen plus an alternate screen (mode 1049) and a count of unknown sequences."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines)
        self.unknown_sequences = 0
        self._saved_main: tuple | None = None

    def debug(self, *args, **kwargs) -> None:
        self.unknown_sequences += 1

    # pyte 0.8.2's insert_lines/delete_lines leave a row's old text in place when the row it
    # should receive was never written (absent from `buffer`); these move every row.
    def insert_lines(self, count: int | None = None) -> None:
        count = count or 1
        top, bottom = self.margins or (0, self.lines - 1)
        y0 = self.cursor.y
        if top <= y0 <= bottom:
            buffer = self.buffer
            for y in range(bottom, y0 - 1, -1):
                source = y - count
                if source >= y0 and source in buffer:
                    buffer[y] = buffer[source]
                else:
                    buffer.pop(y, None)
            self.dirty.update(range(y0, bottom + 1))
            self.carriage_return()

    def delete_lines(self, count: int | None = None) -> None:
        count = count or 1
        top, bottom = self.margins or (0, self.lines - 1)
        y0 = self.cursor.y
        if top <= y0 <= bottom:
            buffer = self.buffer
            for y in range(y0, bottom + 1):
                source = y + count
                if source <= bottom and source in buffer:
                    buffer[y] = buffer.pop(source)
                else:
                    buffer.pop(y, None)
            self.dirty.update(range(y0, bottom + 1))
            self.carriage_return()

    def set_mode(self, *modes: int, **kwargs) -> None:
        # xterm's private mode 1049: save the cursor, switch to the alternate screen, clear it.
        if kwargs.get("private") and 1049 in modes:
            saved_rows = {}
            for y, row in self.buffer.items():
                copy = StaticDefaultDict(row.default)
                copy.update(row)
                saved_rows[y] = copy
            self._saved_main = (saved_rows, self.cursor.x, self.cursor.y)
            # The same cells as erase_in_display(2), without its 7,680 Python-level writes.
            self.buffer.clear()
            self.dirty.update(range(self.lines))
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs) -> None:
        if kwargs.get("private") and 1049 in modes and self._saved_main is not None:
            saved_rows, x, y = self._saved_main
            self._saved_main = None
            self.buffer.clear()
            self.buffer.update(saved_rows)
            self.margins = None
            self.cursor.x, self.cursor.y = x, y
            self.dirty.update(range(self.lines))
        super().reset_mode(*modes, **kwargs)


class Terminal:
    """A pyte screen of `ROWS` × `COLS` cells, its byte stream, and incremental capture.

    `codes` is `uint32 [ROWS, COLS]`: each cell's code point, `WIDE_STUB` for the right half of
    a wide character. It is updated in place by `capture()`; copy it to keep a frame.
    """

    def __init__(self) -> None:
        self.screen = _Screen(COLS, ROWS)  # pyte takes columns first
        self.stream = pyte.Stream(self.screen)
        self.codes = np.full((ROWS, COLS), ord(" "), dtype=np.uint32)

    @property
    def unknown_sequences(self) -> int:
        return self.screen.unknown_sequences

    def feed(self, data: str) -> None:
        self.stream.feed(data)

    def capture(self) -> np.ndarray:
        """Bring `codes` up to date with the screen; return it (`uint32 [ROWS, COLS]`)."""
        screen = self.screen
        if screen.dirty:
            buffer = screen.buffer
            codes = self.codes
            for y in screen.dirty:
                if y >= ROWS:
                    continue
                row = buffer.get(y)
                if not row:
                    codes[y] = 32
                    continue
                # profiled: one list fill and one UTF-32 encode per row is ~4x faster than
                # assigning code points cell by cell into the array.
                chars = _BLANK_ROW.copy()
                for x, char in row.items():
                    chars[x] = char.data or "\0"
                text = "".join(chars[:COLS])
                if len(text) == COLS:
                    codes[y] = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
                else:  # a cell holding a combined sequence: keep its first code point
                    codes[y] = [ord(c[0]) for c in chars[:COLS]]
            screen.dirty.clear()
        return self.codes

    @property
    def cursor(self) -> tuple[int, int]:
        """(row, col) of the cursor; a pending wrap at column COLS reads as the last column."""
        c = self.screen.cursor
        return c.y, min(c.x, COLS - 1)

    def display(self) -> list[str]:
        """The screen as text lines (wide characters once, their stubs dropped), for tests."""
        return ["".join(chr(c) for c in row if c != WIDE_STUB) for row in self.capture().tolist()]


def text_of(frame: np.ndarray) -> list[str]:
    """A captured frame (`[ROWS, COLS]` code points) as text lines, wide-character stubs dropped."""
    return ["".join(chr(c) for c in row if c != WIDE_STUB) for row in frame.tolist()]
