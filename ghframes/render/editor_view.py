"""The editor's drawing half: the minimal ANSI output that keeps a terminal showing the model.

`EditorView` is mixed into `Editor` (editor.py), which owns the state it reads: `lines`, the
cursor `row`/`col`, the view's `top`, `path`, `modified`, the open prompt (`prompt_label`,
`prompt`), `quoting`, the `notice` and `color`. The view keeps its own copy of what the terminal
shows, characters and styles, and writes only the cells whose character or colour changed.

The screen is nano's: 48 rows, row 0 the title bar (the editor's name, the file's name centred,
`Modified` at the right once modified), rows 1..45 the text, row 46 the status bar (path,
`[+]` when modified, `Ln r/n, Col c`), row 47 messages and prompts. With colour the bars and
the notices are reverse video, a prompt's label bold, and the text highlighted
(highlight.py, in theme.py's colours); without it (`color=False`) the same characters are
drawn with no SGR sequence at all.

Display rules (documented in README.md, "The editor"; drawn by cells.py):
- lines longer than the screen scroll horizontally, one line at a time, like nano: the
  cursor's line shifts in steps of `HSCROLL_STEP` cells with `<` in its first cell; any line
  that continues past the right edge shows `>` in the last cell;
- tabs expand to the next multiple of 8 cells;
- wide characters (East Asian, emoji) take two cells, measured with pyte's own `wcwidth`;
  one cut by a screen edge shows as a space;
- control characters are never sent to the terminal: C0 and DEL show as `^X` (`^[`, `^M`,
  `^?`); every other character pyte would not advance the cursor for (C1 controls,
  zero-width and combining characters, unassigned code points) shows as `<hex>` (`<200b>`);
  their cells take the colour of the character they stand for;
- notices (`[ "QUERY" not found ]`) are drawn by the same rules, cut with `>` at the edge;
- a prompt's entry longer than the row shows its end after `<`;
- a file name too long for the title bar shows its end after `<`;
- the view recentres on the cursor when it leaves the screen.
"""

from __future__ import annotations

import functools
import re

from pyte.screens import wcwidth

from ghframes.render.cells import (
    TAB_WIDTH,
    cells_width,
    display_width,
    glyph,
    hscroll_offset,
    line_cells,
    styled_cells,
)
from ghframes.render.highlight import Highlighter
from ghframes.render.terminal import COLS, ROWS
from ghframes.render.theme import BAR_CHAR, LABEL_CHAR, PLAIN, Style, sgr, style_of

TITLE_ROW = 0
TEXT_TOP = 1  # the screen row of text row 0
TEXT_ROWS = ROWS - 3  # rows 1..45 show text
STATUS_ROW = ROWS - 2
MESSAGE_ROW = ROWS - 1
RULER_WIDTH = 32  # right-aligned `Ln r/n, Col c` at the end of the status row
EDITOR_NAME = "ghedit"
TITLE_SIDE = 12  # cells kept clear at each end of the title bar for the name and `Modified`
TITLE_LEFT = "  " + EDITOR_NAME  # the title bar's first cells, whatever the file and its state
VERBATIM = "[ Verbatim Input ]"
PLAIN_ROW = PLAIN * COLS  # the styles of cells drawn plain: a slice of this
_RUNS = re.compile(r"(.)\1*", re.S)  # runs of one style in a row's styles


def _common_prefix(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)
    if a.startswith(b):
        return len(b)
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _cup(row: int, col: int) -> str:
    return f"\x1b[{row + 1};{col + 1}H"


def _fit_end(cells: str, room: int) -> str:
    """`cells` if they fit in `room` cells, else their end after `<`."""
    width = cells_width(cells)
    if width <= room:
        return cells
    i = 0
    while width > room - 1:
        width -= cells_width(cells[i])
        i += 1
    return "<" + cells[i:]


@functools.lru_cache(maxsize=1024)
def colours_of(cells: str, styles: str) -> tuple[Style, ...]:
    """The (fg, bg, attrs) of each of a row's `COLS` cells showing `cells` in `styles` (a wide
    character's two cells share its style; cells past the end are default)."""
    out: list[Style] = []
    for char, style in zip(cells, styles, strict=True):
        out.extend([style_of(style)] * (2 if wcwidth(char) == 2 else 1))
    return tuple(out + [style_of(PLAIN)] * (COLS - len(out)))


class EditorView:
    """Draws `Editor`'s state: `_draw(damage)` after every key, `open`/`close` around a session.

    `expected_rows()`, `expected_colours()` and `expected_cursor()` draw the same state from
    scratch (test oracles).
    """

    # The model's state (set by Editor.__init__ and its keys).
    lines: list[str]
    row: int
    col: int
    top: int
    path: str
    modified: bool
    prompt: str | None
    prompt_label: str
    quoting: bool
    notice: str
    color: bool
    out: list[str]

    def _init_view(self) -> None:
        self._rows = [""] * TEXT_ROWS  # what the terminal shows on each text row
        self._styles = [""] * TEXT_ROWS  # and the style of each of those characters
        self._message = self._message_styles = ""
        self._tcur: tuple[int, int] | None = None  # terminal cursor, when known
        self._tsgr: str | None = None  # the terminal's current style, when known
        self._offset = 0  # horizontal scroll of the cursor's line
        self._dcol = 0  # cursor's display column in its line
        self._bar = BAR_CHAR if self.color else PLAIN
        # None: the text is drawn plain (no colour, or no lexer for this file).
        self._hl = Highlighter.for_file(self.path, self.lines) if self.color else None
        if self._hl is not None and self._hl.mode == "plain":
            self._hl = None

    def open(self) -> None:
        """Draw the editor over the shell: alternate screen, scrolling region, every row."""
        self.out.append(f"\x1b[?1049h\x1b[{TEXT_TOP + 1};{TEXT_TOP + TEXT_ROWS}r")
        self._tcur = (0, 0)  # DECSTBM homes the cursor
        blank = " " * COLS  # the alternate screen starts blank
        self._title, self._title_styles = blank, PLAIN_ROW[:COLS]
        self._title_modified: bool | None = None
        self._status_left = blank[: COLS - RULER_WIDTH]
        self._status_ruler = blank[:RULER_WIDTH]
        self._left_styles = PLAIN_ROW[: COLS - RULER_WIDTH]
        self._ruler_styles = PLAIN_ROW[:RULER_WIDTH]
        self._bar_ruler = self._bar * RULER_WIDTH
        self._scrolled_row: int | None = None  # buffer line drawn with a horizontal offset
        self.notice = f"[ Read {len(self.lines)} lines ]"
        self._draw("all")
        self._show_message(*self._message_parts())
        self._finish(bars_first=False)

    def close(self) -> None:
        """Leave the editor: default colours, reset the scrolling region, back to the shell."""
        if self._tsgr is not None and self._tsgr != PLAIN:
            self.out.append("\x1b[m")
            self._tsgr = PLAIN
        self.out.append("\x1b[r\x1b[?1049l")

    # -- the oracles

    def _scratch_rows(self, styled: bool = True) -> list[tuple[str, str]]:
        """Every row's (cells, styles) drawn from scratch, the text's styles by a fresh
        highlighter (plain when not `styled`)."""
        fresh = Highlighter(self._hl.lexer) if self._hl is not None and styled else None
        rows = [self._title_parts()]
        for i in range(TEXT_ROWS):
            n = self.top + i
            if n >= len(self.lines):
                rows.append(("", ""))
                continue
            offset = self._offset if n == self.row else 0
            line = self.lines[n]
            if fresh is None:
                cells = line_cells(line, offset)
                rows.append((cells, PLAIN_ROW[: len(cells)]))
            else:
                rows.append(styled_cells(line, fresh.styles(self.lines, n), offset))
        left, ruler = self._status_parts()
        rows.append((left + ruler, self._bar * len(left + ruler)))
        rows.append(self._message_parts())
        return rows

    def expected_rows(self) -> list[str]:
        """Every row's text as it should look now, drawn from scratch (a test oracle)."""
        return [cells for cells, _ in self._scratch_rows(styled=False)]

    def expected_colours(self) -> list[list[Style]]:
        """Every cell's (fg, bg, attrs) as it should be now, row by row, drawn from scratch with
        a fresh highlighter (a test oracle; the values are the frames' colour planes)."""
        return self.expected_screen()[1]

    def expected_screen(self) -> tuple[list[str], list[list[Style]]]:
        """`expected_rows()` and `expected_colours()` from one drawing."""
        rows = self._scratch_rows()
        return [cells for cells, _ in rows], [list(colours_of(c, s)) for c, s in rows]

    def expected_cursor(self) -> tuple[int, int]:
        """(row, col) where the terminal cursor should be now, from the model (a test oracle)."""
        if self.prompt is not None:
            return MESSAGE_ROW, self._prompt_cells()[1]
        column = display_width(self.lines[self.row], self.col) - self._offset
        return TEXT_TOP + self.row - self.top, column + (1 if self._offset else 0)

    # -- the rows' contents

    def _title_parts(self) -> tuple[str, str]:
        """The title bar: the editor's name, the file's name centred, `Modified` at the right."""
        left = TITLE_LEFT
        right = "Modified  " if self.modified else ""
        name = _fit_end("".join(glyph(char)[0] for char in self.path), COLS - 2 * TITLE_SIDE)
        width = cells_width(name)
        start = (COLS - width) // 2
        cells = left + " " * (start - len(left)) + name
        cells += " " * (COLS - start - width - len(right)) + right
        return cells, self._bar * len(cells)

    def _prompt_cells(self) -> tuple[str, int]:
        """The message row showing the open prompt, and the cursor's column on it."""
        label, entry = self.prompt_label, self.prompt
        room = COLS - 1 - len(label)  # the cursor stays on the row, after the entry
        width = cells_width(entry)  # typed characters are their own cells
        if width > room:
            i = 0
            while width > room - 1:
                width -= cells_width(entry[i])
                i += 1
            entry = "<" + entry[i:]
            width += 1
        return label + entry, len(label) + width

    def _message_parts(self) -> tuple[str, str]:
        """What the message row shows now and its styles: the open prompt (its label bold), the
        verbatim notice or the notice (reverse video, as nano draws them)."""
        if self.prompt is not None:
            cells = self._prompt_cells()[0]
            n = len(self.prompt_label)
            label = LABEL_CHAR if self.color else PLAIN
            return cells, label * n + PLAIN_ROW[: len(cells) - n]
        cells = VERBATIM if self.quoting else line_cells(self.notice)
        return cells, self._bar * len(cells)

    def _status_parts(self) -> tuple[str, str]:
        """The status row: path and modified flag (left), `Ln r/n, Col c` (right)."""
        room = COLS - RULER_WIDTH
        left = line_cells(" " + self.path + (" [+]" if self.modified else ""))
        if cells_width(left) > room:
            while cells_width(left) > room - 1:
                left = left[:-1]
            left += ">"
        left += " " * (room - cells_width(left))
        return left, self._ruler()

    def _ruler(self) -> str:
        return f"Ln {self.row + 1}/{len(self.lines)}, Col {self.col + 1} ".rjust(RULER_WIDTH)

    # -- output

    def _emit(self, row: int, col: int, cells: str, styles: str) -> None:
        """Write `cells` (in `styles`, switched to only where they change) at (row, col)."""
        out = self.out
        if self._tcur != (row, col):
            out.append(_cup(row, col))
        if self.color and styles:
            first = styles[0]
            if styles.count(first) == len(styles):  # one style: the common case
                if first != self._tsgr:
                    out.append(sgr(self._tsgr, first))
                    self._tsgr = first
                out.append(cells)
            else:
                for run in _RUNS.finditer(styles):
                    style = run.group(1)
                    if style != self._tsgr:
                        out.append(sgr(self._tsgr, style))
                        self._tsgr = style
                    out.append(cells[run.start() : run.end()])
        else:
            out.append(cells)
        end = col + cells_width(cells)
        self._tcur = (row, end) if end < COLS else None  # pending wrap: position unknown

    def _control(self, row: int, sequence: str) -> None:
        """Send an editing sequence (insert or delete a line) with the cursor at `row`'s start."""
        if self._tcur != (row, 0):
            self.out.append(_cup(row, 0))
        self.out.append(sequence)
        self._tcur = (row, 0)

    def _sync(self, row: int, new: str, new_st: str, old: str, old_st: str, col: int = 0) -> None:
        """Make screen `row` (showing `old` in `old_st` from cell `col`) show `new` in `new_st`,
        writing only the cells whose character or style differs."""
        if new == old and new_st == old_st:
            return
        p = min(_common_prefix(old, new), _common_prefix(old_st, new_st))
        old_w, new_w = cells_width(old), cells_width(new)
        start = col + cells_width(new[:p])
        if old_w == new_w:
            s = 0
            limit = min(len(old), len(new)) - p
            while s < limit and old[-1 - s] == new[-1 - s] and old_st[-1 - s] == new_st[-1 - s]:
                s += 1
            self._emit(row, start, new[p : len(new) - s], new_st[p : len(new) - s])
        else:
            pad = max(0, old_w - new_w)
            self._emit(row, start, new[p:] + " " * pad, new_st[p:] + PLAIN_ROW[:pad])

    def _sync_text_row(self, i: int) -> None:
        if not 0 <= i < TEXT_ROWS:
            return
        n = self.top + i
        if n < len(self.lines):
            offset = self._offset if n == self.row else 0
            line = self.lines[n]
            if self._hl is None:
                cells = line_cells(line, offset)
                styles = PLAIN_ROW[: len(cells)]
            else:
                cells, styles = styled_cells(line, self._hl.styles(self.lines, n), offset)
        else:
            cells = styles = ""
        if cells != self._rows[i] or styles != self._styles[i]:
            self._sync(TEXT_TOP + i, cells, styles, self._rows[i], self._styles[i])
            self._rows[i], self._styles[i] = cells, styles

    def _show_message(self, cells: str, styles: str) -> None:
        if cells != self._message or styles != self._message_styles:
            self._sync(MESSAGE_ROW, cells, styles, self._message, self._message_styles)
            self._message, self._message_styles = cells, styles

    # The damage a key returns (editor.py) says what `_draw` repairs. Whatever it is, the status
    # row, the message row and the cursor are brought up to date, and it becomes "all" when the
    # cursor leaves the view:
    #   None                    nothing else (a move within the view);
    #   ("type", before, col)   one character inserted at `col` of the cursor's line, which read
    #                           `before` (drawn in place when typed at the end of a short line,
    #                           otherwise as "line");
    #   "line"                  the cursor's line changed in place;
    #   ("insert", n)           buffer line n is new (split off line n - 1, which changed too);
    #   ("delete", n)           buffer line n is gone (lines below move up; line n - 1 may have
    #                           taken its text);
    #   "all"                   every text row (the view scrolled a page);
    #   "message"               a prompt or the verbatim notice opened, changed or closed, or a
    #                           notice appeared (the cursor may have moved too).

    def _draw(self, damage) -> None:  # profiled: the per-keystroke hot path
        line = self.lines[self.row]
        hl = self._hl
        # The bars first when the terminal is in their style already (the last frame drew them
        # last): one colour switch a key instead of two. The screen is the same either way.
        bars_first = self._tsgr == BAR_CHAR
        if bars_first:
            self._bars()
        if type(damage) is tuple and damage[0] == "type":
            if self._message:  # a typed character closes every notice
                self._show_message("", "")
            _, before, col = damage
            i = self.row - self.top
            # Fast path: a character typed at the end of a short line that is fully on screen
            # (then `_dcol` is the line's width and its row shows it unscrolled), the styles
            # of the characters before it unchanged.
            if col == len(before) and self._offset == 0 and 0 <= i < TEXT_ROWS:
                char = line[-1]
                if char == "\t":
                    width = TAB_WIDTH - self._dcol % TAB_WIDTH
                    cells = " " * width
                else:
                    cells, width = glyph(char)
                if self._dcol + width <= COLS - 2:
                    style = PLAIN
                    if hl is not None:
                        hl.edited(self.row)
                        styles = hl.styles(self.lines, self.row)
                        old = hl.styles_of(before, self.row)
                        style = styles[-1] if old is not None and styles.startswith(old) else ""
                    if style:
                        styles = style * len(cells)
                        self._emit(TEXT_TOP + i, self._dcol, cells, styles)
                        self._rows[i] += cells
                        self._styles[i] += styles
                        self._dcol += width
                        if hl is not None:
                            self._restyle_below()
                        self._finish(bars_first)
                        return
            damage = "line"
        edited = hl is not None and (damage == "line" or type(damage) is tuple)
        if edited:  # the highlighter hears of the change before it styles any line
            if damage == "line":
                hl.edited(self.row)
            elif damage[0] == "insert":
                hl.inserted(damage[1])
            else:
                hl.deleted(damage[1])
        self._dcol = display_width(line, self.col)
        width = display_width(line) if self._dcol >= COLS - 2 else 0
        self._offset = hscroll_offset(self._dcol, width)
        if self.row < self.top or self.row >= self.top + TEXT_ROWS:
            self.top = max(0, self.row - TEXT_ROWS // 2)
            damage = "all"
        if damage == "all":
            for i in range(TEXT_ROWS):
                self._sync_text_row(i)
        elif type(damage) is tuple:
            kind, n = damage
            i = n - self.top
            if kind == "insert":
                if n < len(self.lines) - 1 and 0 <= i < TEXT_ROWS:
                    # Lines below the new one move down: let the terminal shift them.
                    self._control(TEXT_TOP + i, "\x1b[L")
                    self._rows.insert(i, "")
                    self._styles.insert(i, "")
                    del self._rows[TEXT_ROWS], self._styles[TEXT_ROWS]
                self._sync_text_row(i - 1)
                self._sync_text_row(i)
            else:  # "delete": buffer line n is gone, lines below move up
                if 0 <= i < TEXT_ROWS:
                    self._control(TEXT_TOP + i, "\x1b[M")
                    del self._rows[i], self._styles[i]
                    self._rows.append("")
                    self._styles.append("")
                    self._sync_text_row(TEXT_ROWS - 1)
                self._sync_text_row(i - 1)
                self._sync_text_row(i)
        elif damage == "line":
            self._sync_text_row(self.row - self.top)
        if edited:
            self._restyle_below()
        # A line scrolled sideways goes back to its start when the cursor leaves it.
        scrolled = self._scrolled_row
        if scrolled is not None and (scrolled != self.row or self._offset == 0):
            self._sync_text_row(scrolled - self.top)
        if self._offset:
            self._sync_text_row(self.row - self.top)
        self._scrolled_row = self.row if self._offset else None
        if self._message or damage == "message":
            self._show_message(*self._message_parts())
        self._finish(bars_first)

    def _finish(self, bars_first: bool) -> None:
        if not bars_first:
            self._bars()
        self._cursor()

    def _restyle_below(self) -> None:
        """After a change, redraw the rows whose lines' state at their start changed (a string
        or comment opened or closed recolours the lines it reaches)."""
        top = self.top
        lo, hi = self._hl.settle(self.lines, top + TEXT_ROWS - 1)
        for n in range(max(lo, top), min(hi, top + TEXT_ROWS)):
            self._sync_text_row(n - top)

    def _bars(self) -> None:
        """Bring the title and status bars up to date."""
        bar = self._bar
        if self.modified is not self._title_modified:  # the bars' parts that show it
            cells, styles = self._title_parts()
            self._sync(TITLE_ROW, cells, styles, self._title, self._title_styles)
            self._title, self._title_styles = cells, styles
            self._title_modified = self.modified
            left = self._status_parts()[0]
            left_styles = bar * len(left)
            self._sync(STATUS_ROW, left, left_styles, self._status_left, self._left_styles)
            self._status_left, self._left_styles = left, left_styles
        ruler = self._ruler()
        if ruler != self._status_ruler or self._ruler_styles is not self._bar_ruler:
            room = COLS - RULER_WIDTH
            new = self._bar_ruler
            self._sync(STATUS_ROW, ruler, new, self._status_ruler, self._ruler_styles, room)
            self._status_ruler, self._ruler_styles = ruler, new

    def _cursor(self) -> None:
        """Put the terminal's cursor where the editor's is."""
        if self.prompt is not None:
            cursor = (MESSAGE_ROW, self._prompt_cells()[1])
        else:
            column = self._dcol - self._offset + (1 if self._offset else 0)
            cursor = (TEXT_TOP + self.row - self.top, column)
        if self._tcur != cursor:
            self.out.append(_cup(*cursor))
            self._tcur = cursor
