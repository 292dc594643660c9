"""Colours and attributes as every view draws them: the xterm-256 palette and the attribute bits.

A frame's cells carry three uint8 planes beside their code points (frames schema 2.0): `fg`
and `bg`, where 0 is the terminal's default colour and 1..255 that xterm palette index (black
is stored as 16), and `attrs`, a bitfield (BOLD ... BLINK below). The views agree on:
- the palette: xterm's own defaults (XTERM_256, the table pyte uses too);
- the default colours: DEFAULT_FG on DEFAULT_BG, light on dark;
- reverse video swaps a cell's colours after defaults are resolved (default fg on default bg
  reversed is DEFAULT_BG on DEFAULT_FG);
- bold is drawn with a bold face and never brightens a colour, as modern terminals do.
"""

from __future__ import annotations

import numpy as np

BOLD, ITALIC, UNDERLINE, REVERSE, STRIKE, BLINK = 1, 2, 4, 8, 16, 32

DEFAULT_FG = (220, 220, 220)
DEFAULT_BG = (24, 24, 24)
CURSOR = (120, 120, 120)  # the cursor cell's background in the pictures (PNG, GIF)


def _xterm_256() -> np.ndarray:
    """uint8 [256, 3]: xterm's default 16 system colours, the 6x6x6 cube, the 24-step grey ramp."""
    system = [
        "000000", "cd0000", "00cd00", "cdcd00", "0000ee", "cd00cd", "00cdcd", "e5e5e5",
        "7f7f7f", "ff0000", "00ff00", "ffff00", "5c5cff", "ff00ff", "00ffff", "ffffff",
    ]  # fmt: skip
    table = [tuple(int(h[i : i + 2], 16) for i in (0, 2, 4)) for h in system]
    levels = (0, 95, 135, 175, 215, 255)
    table += [(levels[i // 36], levels[i // 6 % 6], levels[i % 6]) for i in range(216)]
    table += [(8 + 10 * k,) * 3 for k in range(24)]
    return np.array(table, dtype=np.uint8)


XTERM_256 = _xterm_256()

# Lookup tables from a stored value to RGB: value 0 is the default colour of its plane.
FG_RGB = XTERM_256.copy()
FG_RGB[0] = DEFAULT_FG
BG_RGB = XTERM_256.copy()
BG_RGB[0] = DEFAULT_BG


def hex_of(rgb) -> str:
    return "".join(f"{int(v):02x}" for v in rgb)


def resolved(fg: np.ndarray, bg: np.ndarray, attrs: np.ndarray, fg_table, bg_table):
    """Each cell's drawn (foreground, background) through the tables (values to RGB rows, or to
    anything indexable by value), reverse video applied: `table[fg]`, `table[bg]` swapped
    where the REVERSE bit is set. Shapes follow the planes (a trailing axis for RGB)."""
    front = np.asarray(fg_table)[fg]
    back = np.asarray(bg_table)[bg]
    rev = (np.asarray(attrs) & REVERSE) != 0
    if rev.any():
        if front.ndim > rev.ndim:
            rev = rev[..., None]
        front, back = np.where(rev, back, front), np.where(rev, front, back)
    return front, back


def rgb_planes(fg: np.ndarray, bg: np.ndarray, attrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [..., 3] foreground and background RGB of cells given by uint8 planes `fg`, `bg`,
    `attrs` (any equal shapes, e.g. [ROWS, COLS]): defaults resolved, reverse applied."""
    return resolved(fg, bg, attrs, FG_RGB, BG_RGB)


def indexed_palette() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A 256-entry palette holding every colour a view draws, for indexed images (GIF):
    `(palette uint8 [256, 3], fg_slot uint8 [256], bg_slot uint8 [256], cursor_slot)`, where
    `palette[fg_slot[v]]` is the RGB of stored fg value v (`bg_slot` likewise). xterm's 256
    colours hold 249 distinct ones, which leaves room for the defaults and the cursor."""
    colours: dict[tuple, int] = {}
    for rgb in [*map(tuple, XTERM_256.tolist()), DEFAULT_FG, DEFAULT_BG, CURSOR]:
        colours.setdefault(rgb, len(colours))
    assert len(colours) <= 256, len(colours)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: len(colours)] = list(colours)
    fg_slot = np.array([colours[tuple(c)] for c in FG_RGB.tolist()], dtype=np.uint8)
    bg_slot = np.array([colours[tuple(c)] for c in BG_RGB.tolist()], dtype=np.uint8)
    return palette, fg_slot, bg_slot, colours[CURSOR]


def nearest_of(count: int) -> np.ndarray:
    """int16 [256]: for each stored value, the terminal colour to draw it with on a terminal of
    `count` colours (curses' COLORS): -1 for the default, the index itself where it exists,
    else the nearest among the first `count` (8 or 16) system colours: by RGB distance plus
    the difference in chroma (max - min of RGB), so that a grey goes to a grey (808080 to
    white, not to xterm's yellow cdcd00, which is nearer in RGB alone)."""
    out = np.arange(256, dtype=np.int16)
    out[0] = -1
    if count >= 256:
        return out
    n = 16 if count >= 16 else 8
    rgb = XTERM_256.astype(np.int32)
    chroma = rgb.max(axis=1) - rgb.min(axis=1)
    dist = ((rgb[:, None, :] - rgb[None, :n]) ** 2).sum(axis=2)
    dist += (chroma[:, None] - chroma[None, :n]) ** 2
    out[n:] = dist.argmin(axis=1)[n:]  # stored black (16) is system black (0)
    return out


def styles_of(fg: np.ndarray, bg: np.ndarray, attrs: np.ndarray) -> np.ndarray:
    """uint32 [ROWS, COLS]: each cell's style as one number, fg | bg << 8 | attrs << 16."""
    return fg.astype(np.uint32) | bg.astype(np.uint32) << 8 | attrs.astype(np.uint32) << 16


# SGR: what turns each attribute bit on and off, in bit order.
_SGR_ON = {BOLD: 1, ITALIC: 3, UNDERLINE: 4, REVERSE: 7, STRIKE: 9, BLINK: 5}
_SGR_OFF = {BOLD: 22, ITALIC: 23, UNDERLINE: 24, REVERSE: 27, STRIKE: 29, BLINK: 25}


def _colour_params(fg: int, bg: int) -> list[str]:
    return [
        "39" if fg == 0 else f"38;5;{fg}",
        "49" if bg == 0 else f"48;5;{bg}",
    ]


def sgr(old: tuple[int, int, int], new: tuple[int, int, int]) -> str:
    """The shortest plain SGR sequence taking the pen from style `old` to `new`, each
    `(fg, bg, attrs)` as stored; "" when they are equal. Only 0, 1/22, 3/23, 4/24, 5/25,
    7/27, 9/29, 38;5;n/39 and 48;5;n/49 are written: what asciinema's players and pyte read."""
    if old == new:
        return ""
    fg, bg, attrs = new
    if new == (0, 0, 0):
        return "\x1b[0m"
    fresh = ["0"] + [str(code) for bit, code in _SGR_ON.items() if attrs & bit]
    fresh += [p for p, d in zip(_colour_params(fg, bg), ("39", "49"), strict=True) if p != d]
    params = [str(_SGR_OFF[bit]) for bit in _SGR_OFF if old[2] & bit and not attrs & bit]
    params += [str(_SGR_ON[bit]) for bit in _SGR_ON if attrs & bit and not old[2] & bit]
    fgp, bgp = _colour_params(fg, bg)
    if fg != old[0]:
        params.append(fgp)
    if bg != old[1]:
        params.append(bgp)
    best = min(params, fresh, key=lambda p: len(";".join(p)))
    return f"\x1b[{';'.join(best)}m"


class CursesStyles:
    """curses attributes for stored styles, on whatever colours the terminal has: with
    has_colors, colour pairs made on demand and cached (at most COLOR_PAIRS - 1, and 255: a
    Python curses attribute holds a pair number in 8 bits), the palette value itself on a
    256-colour terminal, the nearest of its 8 or 16 colours on a smaller one (nearest_of);
    without colours, attributes only. Strikethrough has no curses attribute and is not drawn."""

    def __init__(self) -> None:
        import curses

        self.curses = curses
        self.colour = False
        self.default = (-1, -1)  # the terminal's own colours, where use_default_colors works
        try:
            if curses.has_colors():
                curses.start_color()  # curses.wrapper did already; harmless twice
                try:
                    curses.use_default_colors()
                except curses.error:
                    self.default = (curses.COLOR_WHITE, curses.COLOR_BLACK)
                self.colour = True
        except curses.error:
            pass
        self.limit = min(curses.COLOR_PAIRS - 1, 255) if self.colour else 0
        self.nearest = nearest_of(curses.COLORS).tolist() if self.colour else []
        self.bits = {
            BOLD: curses.A_BOLD,
            ITALIC: getattr(curses, "A_ITALIC", 0),
            UNDERLINE: curses.A_UNDERLINE,
            REVERSE: curses.A_REVERSE,
            BLINK: curses.A_BLINK,
        }
        self.pairs: dict[tuple[int, int], int] = {}
        self.attrs: dict[int, int] = {0: 0}  # style key (fg | bg << 8 | attrs << 16) -> attr
        self.full = False

    def begin_frame(self) -> None:
        """Called before each frame is drawn: pairs ran out during the last one, so they are
        made anew for this one (a frame never needs more than the terminal has to show)."""
        if self.full:
            self.pairs.clear()
            self.attrs = {0: 0}
            self.full = False

    def attr(self, key: int) -> int:
        """The curses attribute drawing style `key` (fg | bg << 8 | attrs << 16)."""
        got = self.attrs.get(key)
        if got is None:
            fg, bg, attrs = key & 0xFF, key >> 8 & 0xFF, key >> 16 & 0xFF
            got = sum(a for bit, a in self.bits.items() if attrs & bit)
            if self.colour and (fg or bg):
                got |= self._pair(fg, bg)
            if not self.full:
                self.attrs[key] = got
        return got

    def _pair(self, fg: int, bg: int) -> int:
        front, back = self.nearest[fg], self.nearest[bg]
        front = self.default[0] if front < 0 else front
        back = self.default[1] if back < 0 else back
        number = self.pairs.get((front, back))
        if number is None:
            if len(self.pairs) >= self.limit:
                self.full = True  # this cell in the default colours; begin_frame starts over
                return 0
            number = len(self.pairs) + 1
            self.curses.init_pair(number, front, back)
            self.pairs[(front, back)] = number
        return self.curses.color_pair(number)
