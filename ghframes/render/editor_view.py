"""The editor's drawing half: the minimal ANSI output that keeps a terminal showing the model.

`EditorView` is mixed into `Editor` (editor.py), which owns the state it reads: `lines`, the
cursor `row`/`col`, the view's `top`, `path`, `modified`, the open prompt (`prompt_label`,
`prompt`), `quoting` and the `notice`. The view keeps its own copy of what the terminal shows
and writes only the cells that changed. The screen is 48 rows: 46 text rows, a status row (path,
modified flag, `Ln r/n, Col c`) and a message row (prompts and notices).

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
- notices (`[ "QUERY" not found ]`) are drawn by the same rules, cut with `>` at the edge;
- a prompt's entry longer than the row shows its end after `<`;
- the view recentres on the cursor when it leaves the screen.
"""

from __future__ import annotations

from ghframes.render.cells import (
    TAB_WIDTH,
    cells_width,
    display_width,
    glyph,
    hscroll_offset,
    line_cells,
)
from ghframes.render.terminal import COLS, ROWS

TEXT_ROWS = ROWS - 2  # rows 0..45 show text
STATUS_ROW = ROWS - 2
MESSAGE_ROW = ROWS - 1
RULER_WIDTH = 32  # right-aligned `Ln r/n, Col c` at the end of the status row
VERBATIM = "[ Verbatim Input ]"


def _common_prefix(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _cup(row: int, col: int) -> str:
    return f"\x1b[{row + 1};{col + 1}H"


class EditorView:
    """Draws `Editor`'s state: `_draw(damage)` after every key, `open`/`close` around a session.

    `expected_rows()` and `expected_cursor()` draw the same state from scratch (test oracles).
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
    out: list[str]

    def _init_view(self) -> None:
        self._rows = [""] * TEXT_ROWS  # what the terminal shows on each text row
        self._message = ""
        self._tcur: tuple[int, int] | None = None  # terminal cursor, when known
        self._offset = 0  # horizontal scroll of the cursor's line
        self._dcol = 0  # cursor's display column in its line

    def open(self) -> None:
        """Draw the editor over the shell: alternate screen, scrolling region, every row."""
        self.out.append(f"\x1b[?1049h\x1b[1;{TEXT_ROWS}r")
        self._tcur = (0, 0)  # DECSTBM homes the cursor
        self._status_left = " " * (COLS - RULER_WIDTH)  # the alternate screen starts blank
        self._status_ruler = " " * RULER_WIDTH
        self._scrolled_row: int | None = None  # buffer line drawn with a horizontal offset
        self.notice = f"[ Read {len(self.lines)} lines ]"
        self._draw("all")
        self._show_message(self._message_cells())
        self._status_and_cursor()

    def close(self) -> None:
        """Leave the editor: reset the scrolling region, back to the shell's screen."""
        self.out.append("\x1b[r\x1b[?1049l")

    def expected_rows(self) -> list[str]:
        """Every row's text as it should look now, drawn from scratch (a test oracle)."""
        rows = []
        for i in range(TEXT_ROWS):
            n = self.top + i
            offset = self._offset if n == self.row else 0
            rows.append(line_cells(self.lines[n], offset) if n < len(self.lines) else "")
        left, ruler = self._status_parts()
        rows.append(left + ruler)
        rows.append(self._message_cells())
        return rows

    def expected_cursor(self) -> tuple[int, int]:
        """(row, col) where the terminal cursor should be now, from the model (a test oracle)."""
        if self.prompt is not None:
            return MESSAGE_ROW, self._prompt_cells()[1]
        column = display_width(self.lines[self.row], self.col) - self._offset
        return self.row - self.top, column + (1 if self._offset else 0)

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

    def _message_cells(self) -> str:
        """What the message row shows now: the open prompt, the verbatim notice or the notice."""
        if self.prompt is not None:
            return self._prompt_cells()[0]
        if self.quoting:
            return VERBATIM
        return line_cells(self.notice)

    def _emit(self, row: int, col: int, cells: str) -> None:
        if self._tcur != (row, col):
            self.out.append(_cup(row, col))
        self.out.append(cells)
        end = col + cells_width(cells)
        self._tcur = (row, end) if end < COLS else None  # pending wrap: position unknown

    def _sync(self, row: int, new: str, old: str, col: int = 0) -> None:
        """Make screen `row` (showing `old` from cell `col`) show `new`, writing only what differs."""
        if new == old:
            return
        p = _common_prefix(old, new)
        old_w, new_w = cells_width(old), cells_width(new)
        if old_w == new_w:
            s = 0
            limit = min(len(old), len(new)) - p
            while s < limit and old[-1 - s] == new[-1 - s]:
                s += 1
            self._emit(row, col + cells_width(new[:p]), new[p : len(new) - s])
        else:
            self._emit(row, col + cells_width(new[:p]), new[p:] + " " * max(0, old_w - new_w))

    def _sync_text_row(self, i: int) -> None:
        if not 0 <= i < TEXT_ROWS:
            return
        n = self.top + i
        if n < len(self.lines):
            offset = self._offset if n == self.row else 0
            cells = line_cells(self.lines[n], offset)
        else:
            cells = ""
        if cells != self._rows[i]:
            self._sync(i, cells, self._rows[i])
            self._rows[i] = cells

    def _show_message(self, cells: str) -> None:
        if cells != self._message:
            self._sync(MESSAGE_ROW, cells, self._message)
            self._message = cells

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
        # Fast path: a character typed at the end of a short line that is fully on screen
        # (then `_dcol` is the line's width and its row shows it unscrolled).
        if type(damage) is tuple and damage[0] == "type":
            if self._message:  # a typed character closes every notice
                self._show_message("")
            _, before, col = damage
            i = self.row - self.top
            if col == len(before) and self._offset == 0 and 0 <= i < TEXT_ROWS:
                char = line[-1]
                if char == "\t":
                    width = TAB_WIDTH - self._dcol % TAB_WIDTH
                    cells = " " * width
                else:
                    cells, width = glyph(char)
                if self._dcol + width <= COLS - 2:
                    self._emit(i, self._dcol, cells)
                    self._rows[i] += cells
                    self._dcol += width
                    self._status_and_cursor()
                    return
            damage = "line"
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
                    self._emit(i, 0, "\x1b[L")
                    self._tcur = (i, 0)
                    self._rows.insert(i, "")
                    del self._rows[TEXT_ROWS]
                self._sync_text_row(i - 1)
                self._sync_text_row(i)
            else:  # "delete": buffer line n is gone, lines below move up
                if 0 <= i < TEXT_ROWS:
                    self._emit(i, 0, "\x1b[M")
                    self._tcur = (i, 0)
                    del self._rows[i]
                    self._rows.append("")
                    self._sync_text_row(TEXT_ROWS - 1)
                self._sync_text_row(i - 1)
                self._sync_text_row(i)
        elif damage == "line":
            self._sync_text_row(self.row - self.top)
        # A line scrolled sideways goes back to its start when the cursor leaves it.
        scrolled = self._scrolled_row
        if scrolled is not None and (scrolled != self.row or self._offset == 0):
            self._sync_text_row(scrolled - self.top)
        if self._offset:
            self._sync_text_row(self.row - self.top)
        self._scrolled_row = self.row if self._offset else None
        if self._message or damage == "message":
            self._show_message(self._message_cells())
        self._status_and_cursor()

    def _status_parts(self) -> tuple[str, str]:
        """The status row: path and modified flag (left), `Ln r/n, Col c` (right)."""
        room = COLS - RULER_WIDTH
        left = line_cells(" " + self.path + (" [+]" if self.modified else ""))
        if cells_width(left) > room:
            while cells_width(left) > room - 1:
                left = left[:-1]
            left += ">"
        left += " " * (room - cells_width(left))
        ruler = f"Ln {self.row + 1}/{len(self.lines)}, Col {self.col + 1} "
        return left, ruler.rjust(RULER_WIDTH)

    def _status_and_cursor(self) -> None:
        left, ruler = self._status_parts()
        if left != self._status_left:
            self._sync(STATUS_ROW, left, self._status_left)
            self._status_left = left
        if ruler != self._status_ruler:
            self._sync(STATUS_ROW, ruler, self._status_ruler, COLS - RULER_WIDTH)
            self._status_ruler = ruler
        if self.prompt is not None:
            cursor = (MESSAGE_ROW, self._prompt_cells()[1])
        else:
            cursor = (self.row - self.top, self._dcol - self._offset + (1 if self._offset else 0))
        if self._tcur != cursor:
            self.out.append(_cup(*cursor))
            self._tcur = cursor
