"""Screen capture: a pyte 48×160 terminal fed with program output, read back as code points,
colours and attributes.

Frames are exactly what pyte shows. Capture is incremental: only the rows pyte marks dirty
are converted, into reused arrays: `codes` (`uint32 [ROWS, COLS]`) and the colour planes `fg`,
`bg`, `attrs` (`uint8 [ROWS, COLS]`, frames schema 2.0). pyte silently drops escape sequences
it does not know (its `Screen.debug` is a no-op); this terminal counts them instead, so a
renderer can prove it never sent one.

Colour values (schemas/frames.json, `fg`): 0 is the terminal's default colour, 1..255 that
xterm-256 palette index, palette index 0 (black) stored as 16, the cube's black of the same
RGB, so that 0 stays free for "default". `palette_value` maps pyte's colour strings to them;
`ATTR_BITS` gives each attribute's bit.
"""

from __future__ import annotations

import numpy as np
import pyte
import pyte.graphics
from pyte import modes as mo
from pyte.screens import StaticDefaultDict

from ghframes.render.vtstream import Stream
from ghframes.store.geometry import COLS, ROWS, WIDE_STUB

__all__ = [
    "ATTR_BITS",
    "COLS",
    "DEFAULT_COLOUR",
    "ROWS",
    "WIDE_STUB",
    "Terminal",
    "attrs_value",
    "palette_value",
    "text_of",
]

_BLANK_ROW = [" "] * (COLS + 1)  # one spare cell: pyte's insert_characters may write column COLS

DEFAULT_COLOUR = 0  # fg/bg value of the terminal's default colour
# Bit of each attribute in `attrs`, by pyte's Char field name (frames schema 2.0).
ATTR_BITS = {
    "bold": 1,
    "italics": 2,
    "underscore": 4,
    "reverse": 8,
    "strikethrough": 16,
    "blink": 32,
}
# pyte's names for SGR 30-37 / 40-47 (palette 1-7, black 16) and 90-97 / 100-107 (8-15), as
# pyte.graphics spells them ("brown" is yellow; "bfightmagenta" is pyte 0.8.2's typo for 105).
_NAMED = {
    "black": 16, "red": 1, "green": 2, "brown": 3, "blue": 4, "magenta": 5, "cyan": 6,
    "white": 7, "brightblack": 8, "brightred": 9, "brightgreen": 10, "brightbrown": 11,
    "brightblue": 12, "brightmagenta": 13, "bfightmagenta": 13, "brightcyan": 14,
    "brightwhite": 15,
}  # fmt: skip


def _rgb(index: int) -> tuple[int, int, int]:
    h = pyte.graphics.FG_BG_256[index]
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _nearest(rgb: tuple[int, int, int]) -> int:
    """The palette value (1..255) whose xterm RGB is closest to `rgb` (squared distance; ties:
    the lower index)."""

    def distance(index: int) -> int:
        return sum((a - b) ** 2 for a, b in zip(_rgb(index), rgb, strict=True))

    return min(range(1, 256), key=distance)


class _Palette(dict):
    """pyte colour string -> value; strings outside the table (24-bit `38;2;r;g;b` colours, which
    the renderer never emits) take the nearest palette entry, and are remembered."""

    def __missing__(self, name: str) -> int:
        try:
            value = _nearest((int(name[0:2], 16), int(name[2:4], 16), int(name[4:6], 16)))
        except (ValueError, TypeError):
            value = DEFAULT_COLOUR  # no colour pyte could give: as the default
        self[name] = value
        return value


def _palette() -> _Palette:
    table = _Palette(default=DEFAULT_COLOUR)
    table.update(_NAMED)
    # SGR 38;5;n: pyte keeps n's hex; hex back to the lowest index >= 1 that has it (index 0,
    # black, shares its hex with 16)
    for index in range(255, 0, -1):
        table[pyte.graphics.FG_BG_256[index]] = index
    return table


PALETTE = _palette()  # pyte colour string -> fg/bg value (0..255)


def palette_value(name: str) -> int:
    """The stored fg/bg value (0..255) of a pyte colour string: "default" -> 0, a name
    ("red", "brightred", ...) -> its palette index ("black" -> 16), a 256-colour hex from
    `pyte.graphics.FG_BG_256` -> its index (the lowest >= 1 of those sharing it)."""
    return PALETTE[name]


def attrs_value(char: pyte.screens.Char) -> int:
    """The `attrs` bitfield (ATTR_BITS) of a pyte Char."""
    return sum(bit for name, bit in ATTR_BITS.items() if getattr(char, name))


# Char's flag fields, in its order, as the shift of their bit in `attrs`.
_FLAG_SHIFTS = tuple(
    ATTR_BITS[name].bit_length() - 1
    for name in ("bold", "italics", "underscore", "strikethrough", "reverse", "blink")
)
# A row of n cells: its keys when written in order, and its fields when plain.
_IN_ORDER = [tuple(range(n)) for n in range(COLS + 1)]
_DEFAULTS = [("default",) * n for n in range(COLS + 2)]
_FALSES = [(False,) * n for n in range(COLS + 2)]
_NO_FLAGS = [[flags] * 6 for flags in _FALSES]  # a row's six flag fields, none set
_SPACES = [" " * n for n in range(COLS + 1)]
_ZEROS = [bytes(n) for n in range(COLS + 1)]


def _changed_span(before: tuple, after: tuple) -> tuple[int, int]:
    """[lo, hi): the cells of `after` that differ from `before` (as long), less the equal
    prefix and suffix; compared 16 at a time, at C speed (equal Chars are unchanged cells)."""
    n, lo = len(after), 0
    while lo < n and before[lo : lo + 16] == after[lo : lo + 16]:
        lo += 16
    lo = min(lo, n)
    while lo < n and before[lo] == after[lo]:
        lo += 1
    hi = n
    while hi - 16 > lo and before[hi - 16 : hi] == after[hi - 16 : hi]:
        hi -= 16
    while hi > lo and before[hi - 1] == after[hi - 1]:
        hi -= 1
    return lo, hi


def _put_codes(codes: np.ndarray, y: int, chars: list[str]) -> None:
    """Row y of `codes` from `chars` (COLS + 1 cells' text, "\\0" for a wide stub)."""
    text = "".join(chars[:COLS])
    if len(text) == COLS:
        codes[y] = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    else:  # a cell holding a combined sequence: keep its first code point
        codes[y] = [ord(c[0]) for c in chars[:COLS]]


class _Screen(pyte.Screen):
    """pyte's screen plus an alternate screen (mode 1049) and a count of unknown sequences."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines)
        self.unknown_sequences = 0
        self._saved_main: tuple | None = None
        self._sgr: dict[tuple, pyte.screens.Char] = {}  # (attrs, SGR parameters) -> attrs

    def debug(self, *args, **kwargs) -> None:
        self.unknown_sequences += 1

    def select_graphic_rendition(self, *attrs: int) -> None:
        """pyte's, remembered: the attributes it gives are a function of the cursor's and the
        parameters (the editor's theme has a few dozen pairs)."""
        key = (self.cursor.attrs, attrs)
        known = self._sgr.get(key)
        if known is None:
            super().select_graphic_rendition(*attrs)
            if len(self._sgr) >= 4096:  # parameters from elsewhere: keep the table small
                self._sgr.clear()
            known = self._sgr[key] = self.cursor.attrs
        self.cursor.attrs = known

    def draw(self, data: str) -> None:  # profiled: every run of text the renderer writes
        """pyte's draw; printable ASCII that fits on the cursor's line (most of what the editor
        writes) is put in place in one go, with the very Chars pyte's loop would make."""
        data = data.translate(self.g1_charset if self.charset else self.g0_charset)
        cursor = self.cursor
        x, n = cursor.x, len(data)
        if not (data.isascii() and data.isprintable() and x + n <= self.columns) or (
            mo.IRM in self.mode
        ):
            super().draw(data)  # wide, combining or control characters, a wrap, insert mode
            return
        if n:
            new, rest, char = tuple.__new__, tuple(cursor.attrs)[1:], type(cursor.attrs)
            cells = [new(char, (c, *rest)) for c in data]
            self.buffer[cursor.y].update(zip(range(x, x + n), cells, strict=True))
            cursor.x = x + n
        self.dirty.add(cursor.y)

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
    a wide character. `fg`, `bg` and `attrs` are `uint8 [ROWS, COLS]`: each cell's colours
    (`palette_value`) and attribute bits (`ATTR_BITS`), views of `planes` (`uint8 [3, ROWS,
    COLS]`); with `colour=False` they are not captured and stay 0. All are updated in place by
    `capture()`; copy them to keep a frame. A cell pyte never wrote is a plain space (the
    renderer never sets DECSCNM, pyte's screen-wide reverse video).
    """

    def __init__(self, colour: bool = True) -> None:
        self.screen = _Screen(COLS, ROWS)  # pyte takes columns first
        self.stream = Stream(self.screen)  # pyte's, parsing whole sequences at a time
        self.codes = np.full((ROWS, COLS), ord(" "), dtype=np.uint32)
        self.colour = colour
        self.planes = np.zeros((3, ROWS, COLS), dtype=np.uint8)
        self.fg, self.bg, self.attrs = self.planes
        # per row, (keys, Chars) when last captured: what `codes` and the planes show of it
        self._last: list[tuple[tuple, tuple] | None] = [None] * ROWS
        self._styled = [False] * ROWS  # rows whose planes may hold a value other than 0

    @property
    def unknown_sequences(self) -> int:
        return self.screen.unknown_sequences

    def feed(self, data: str) -> None:
        self.stream.feed(data)

    def capture(self) -> np.ndarray:
        """Bring `codes` (and the colour planes) up to date with the screen; return `codes`
        (`uint32 [ROWS, COLS]`)."""
        screen = self.screen
        if screen.dirty:
            buffer = screen.buffer
            for y in screen.dirty:
                if y >= ROWS:
                    continue
                row = buffer.get(y)
                if row:
                    self._capture_row(y, row)
                    continue
                self.codes[y] = 32
                self._last[y] = None
                if self._styled[y]:
                    self.planes[:, y] = 0
                    self._styled[y] = False
            screen.dirty.clear()
        return self.codes

    def _capture_row(self, y: int, row: dict) -> None:  # profiled: per dirty row
        """Row y's code points, fg, bg and attrs, of the cells that changed since it was last
        captured (`_last`; 15 of 90 a dirty row, measured on the render benchmark): one C-level
        transpose of their Chars into their fields, one UTF-32 encode for the code points,
        tuple comparisons to find what is plain, C-level maps for the colours."""
        xs, cells = tuple(row), tuple(row.values())
        n = len(cells)
        ordered = n <= COLS and xs == _IN_ORDER[n]  # cells 0..n-1, written in order
        last, self._last[y] = self._last[y], (xs, cells)
        lo, hi = 0, n
        if ordered and last is not None and last[0] == xs:  # the arrays hold `last`'s cells
            lo, hi = _changed_span(last[1], cells)
            if lo == hi:
                return
        # every Char has its 9 fields: strict=True would only cost a check (a quarter more)
        data, fg, bg, *flags = zip(*cells[lo:hi], strict=False)
        m = hi - lo
        text = "".join(data)
        if ordered and len(text) == m:
            pad = _SPACES[COLS - n] if hi == n else ""
            self.codes[y, lo : hi + len(pad)] = np.frombuffer(
                (text + pad).encode("utf-32-le"), dtype=np.uint32
            )
        else:  # out of order, wide characters' stubs ("") or combined sequences: the whole row
            lo, hi, m = 0, n, n
            data, fg, bg, *flags = zip(*cells, strict=False)
            chars = _BLANK_ROW.copy()
            for x, char in zip(xs, data, strict=True):
                chars[x] = char or "\0"
            _put_codes(self.codes, y, chars)
        if not self.colour:
            return
        styled = self._styled
        default, false = _DEFAULTS[m], _FALSES[m]
        # attrs: each flag set somewhere adds its bit to every byte of the row at once, as one
        # big integer of m bytes (a flag is 0 or 1, a byte holds all six bits: no carries)
        attrs = 0
        if flags != _NO_FLAGS[m]:  # one C-level comparison for the usual case: none set
            for flag, bit in zip(flags, _FLAG_SHIFTS, strict=True):
                if flag != false:
                    attrs |= int.from_bytes(bytes(flag), "little") << bit
        if not attrs and fg == default and bg == default:
            if m == n and styled[y]:  # the whole row is plain
                self.planes[:, y] = 0
                styled[y] = False
            elif styled[y]:  # the cells that changed are plain
                self.planes[:, y, lo:hi] = 0
            return  # (a plain row's planes are 0 already)
        zeros = bytes(m)
        fgs = zeros if fg == default else bytes(map(PALETTE.__getitem__, fg))
        bgs = zeros if bg == default else bytes(map(PALETTE.__getitem__, bg))
        values = np.frombuffer(fgs + bgs + attrs.to_bytes(m, "little"), np.uint8).reshape(3, m)
        planes = self.planes[:, y]
        if ordered:
            planes[:, lo:hi] = values
            if hi == n:
                planes[:, n:] = 0
        else:
            planes[:] = 0
            at = np.fromiter(xs, np.intp, n)
            keep = at < COLS  # the spare cell pyte's insert_characters may fill
            planes[:, at[keep]] = values[:, keep]
        styled[y] = True

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
