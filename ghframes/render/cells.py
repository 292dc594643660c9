"""Terminal cells: how a character, a line and a sideways-scrolled line are drawn, and their widths.

Widths are pyte's own `wcwidth`, so what the editor plans is what the terminal shows. The
editor's display rules (editor_view.py's docstring) are implemented here, for a line's characters
and, where it is highlighted, their styles.
"""

from __future__ import annotations

import functools

from pyte.screens import wcwidth

from ghframes.render.terminal import COLS
from ghframes.render.theme import PLAIN

TAB_WIDTH = 8
HSCROLL_STEP = COLS - 8  # cells a long line shifts by when the cursor crosses an edge


@functools.lru_cache(maxsize=65536)
def glyph(char: str) -> tuple[str, int]:
    """The cells `char` (not a tab) is drawn as, and their number."""
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 64), 2
    if code == 0x7F:
        return "^?", 2
    width = wcwidth(char)
    if width == 1 or width == 2:
        return char, width
    notation = f"<{code:02x}>"
    return notation, len(notation)


def is_typable(char: str) -> bool:
    """Whether `char` is typed as itself (an action equal to the character)."""
    return char != "\t" and glyph(char)[0] == char


def cells_width(cells: str) -> int:
    """Terminal cells taken by a string of drawn glyphs (every character is 1 or 2 wide)."""
    if cells.isascii():
        return len(cells)
    return sum(wcwidth(c) for c in cells)


def display_width(line: str, end: int | None = None) -> int:
    """Display column after `line[:end]` (tabs expanded, notation counted)."""
    text = line if end is None else line[:end]
    if text.isascii() and text.isprintable():
        return len(text)
    column = 0
    for char in text:
        if char == "\t":
            column += TAB_WIDTH - column % TAB_WIDTH
        else:
            column += glyph(char)[1]
    return column


def hscroll_offset(cursor_column: int, line_width: int) -> int:
    """Display column shown first on the cursor's line (0: not scrolled)."""
    if cursor_column <= COLS - 2 or (line_width <= COLS and cursor_column <= COLS - 1):
        return 0
    return ((cursor_column - (COLS - 2)) // HSCROLL_STEP + 1) * HSCROLL_STEP


@functools.lru_cache(maxsize=4096)
def line_cells(line: str, offset: int = 0) -> str:
    """The cells of a screen row showing `line` scrolled to display column `offset`."""
    if offset == 0 and len(line) <= COLS and line.isascii() and line.isprintable():
        return line
    return _cut(line, None, offset)[0]


@functools.lru_cache(maxsize=4096)
def styled_cells(line: str, styles: str, offset: int = 0) -> tuple[str, str]:
    """`line_cells(line, offset)` and the style of each of its characters (theme.py's style
    characters): a character's cells take its style (`styles`, one per character of `line`),
    the `<` and `>` of a scrolled line the default."""
    if offset == 0 and len(line) <= COLS and line.isascii() and line.isprintable():
        return line, styles
    return _cut(line, styles, offset)


def _cut(line: str, styles: str | None, offset: int) -> tuple[str, str]:
    """The cells of `line` from display column `offset` on, cut at the row's end, and their
    styles ("" when `styles` is None)."""
    parts = []
    column = 0
    for k, char in enumerate(line):
        style = styles[k] if styles is not None else ""
        if char == "\t":
            width = TAB_WIDTH - column % TAB_WIDTH
            parts.append((column, " " * width, width, style))
        else:
            cells, width = glyph(char)
            parts.append((column, cells, width, style))
        column += width
    plain = "" if styles is None else PLAIN
    if offset == 0 and column <= COLS:
        return "".join(p[1] for p in parts), "".join(p[3] * len(p[1]) for p in parts)
    first = 1 if offset else 0  # cell 0 holds `<` when scrolled
    room = COLS - first
    more = column - offset > room
    lo, hi = offset, offset + (room - 1 if more else room)
    out = ["<"] if offset else []
    out_styles = [plain] if offset else []
    for start, cells, width, style in parts:
        end = start + width
        if end <= lo:
            continue
        if start >= hi:
            break
        if lo <= start and end <= hi:
            piece = cells
        elif len(cells) == width:  # spaces or notation: cut at cell granularity
            piece = cells[max(lo - start, 0) : hi - start]
        else:  # a wide character cut by the edge
            piece = " "
        out.append(piece)
        out_styles.append(style * len(piece))
    if more:
        out.append(">")
        out_styles.append(plain)
    return "".join(out), "".join(out_styles)
