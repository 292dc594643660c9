"""The full-screen editor: a buffer model driven by actions, and the minimal ANSI output that draws it.

`Editor(text)` is the model alone (what `verify` and the planner run); `Editor(text, out=[])`
also appends, for every action, the bytes a real terminal editor would write, redrawing only
the cells that changed. The screen is 48 rows: 46 text rows, a status row (path, modified flag,
`Ln r/n, Col c`) and a message row (prompts and notices).

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
- the view recentres on the cursor when it leaves the screen.
"""

from __future__ import annotations

from ghframes.render.cells import (
    TAB_WIDTH,
    cells_width,
    display_width,
    glyph,
    hscroll_offset,
    is_typable,
    line_cells,
)
from ghframes.render.terminal import COLS, ROWS
from ghframes.store.actions import CONTROL

TEXT_ROWS = ROWS - 2  # rows 0..45 show text
STATUS_ROW = ROWS - 2
MESSAGE_ROW = ROWS - 1
RULER_WIDTH = 32  # right-aligned `Ln r/n, Col c` at the end of the status row
PAGE_LINES = TEXT_ROWS - 2  # lines PgUp/PgDn move; two lines of context stay on screen

# After <C-v>, a key of `CONTROL` (schemas/actions.json) inserts its control character; the
# other keys the editor handles are `_KEYS`, at the end of this module.
QUOTE_OF = {char: key for key, char in CONTROL.items()}  # control character -> its key


class EditorError(ValueError):
    """An action the editor cannot take in its current state."""


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


class Editor:
    """The editor's state (`lines`, cursor `row`/`col`, view `top`) and its reaction to actions.

    With `out` a list, every action appends the terminal output that redraws what changed.
    """

    def __init__(self, text: str, path: str = "", out: list[str] | None = None) -> None:
        self.lines = text.split("\n")
        self.path = path
        self.row = 0
        self.col = 0
        self.goal = 0  # column Up/Down aim for
        self.top = 0
        self.modified = False
        self.prompt: str | None = None  # digits typed at the go-to-line prompt
        self.quoting = False  # <C-v> pressed: the next key is inserted verbatim
        self.done = False
        self.out = out
        if out is not None:
            self._rows = [""] * TEXT_ROWS  # what the terminal shows on each text row
            self._message = ""
            self._tcur: tuple[int, int] | None = None  # terminal cursor, when known
            self._offset = 0  # horizontal scroll of the cursor's line
            self._dcol = 0  # cursor's display column in its line

    # ---------------------------------------------------------------- model

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def press(self, action: str) -> None:
        """Apply one action; raise EditorError if the editor cannot take it."""
        if self.done:
            raise EditorError(f"action {action!r} after the editor quit")
        if self.prompt is not None:
            damage = self._prompt_key(action)
        elif self.quoting:
            char = CONTROL.get(action)
            if char is None or char in "\n":
                raise EditorError(f"{action!r} cannot follow <C-v>")
            self.quoting = False
            damage = self._insert(char)
        elif len(action) == 1:
            if not is_typable(action):
                raise EditorError(f"{action!r} is not a printable character")
            damage = self._insert(action)
        else:
            method = _KEYS.get(action)
            if method is not None:
                damage = method(self)
            elif action.startswith("<U+") and action.endswith(">"):
                damage = self._insert(self._code_point(action))
            else:
                raise EditorError(f"unknown action {action!r}")
        if self.out is not None:
            self._draw(damage)

    @staticmethod
    def _code_point(action: str) -> str:
        try:
            char = chr(int(action[3:-1], 16))
        except ValueError:
            raise EditorError(f"bad code point in {action!r}") from None
        if char == "\n" or char == "\t" or is_typable(char) or char in QUOTE_OF:
            raise EditorError(f"{action!r} has its own key")
        return char

    # Each key returns the damage `_draw` repairs. Whatever it is, the status row and the cursor
    # are brought up to date, a notice on the message row is cleared, and it becomes "all" when
    # the cursor leaves the view:
    #   None                    nothing else (a move within the view);
    #   ("type", before, col)   one character inserted at `col` of the cursor's line, which read
    #                           `before` (drawn in place when typed at the end of a short line,
    #                           otherwise as "line");
    #   "line"                  the cursor's line changed in place;
    #   ("insert", n)           buffer line n is new (split off line n - 1, which changed too);
    #   ("delete", n)           buffer line n is gone (lines below move up; line n - 1 may have
    #                           taken its text);
    #   "all"                   every text row (the view scrolled a page);
    #   "message"               the go-to-line prompt or the verbatim notice opened, changed
    #                           or closed (the message row shows the editor's state);
    #   "saved"                 the file was written: the message row says so.

    def _insert(self, char: str):
        line = self.lines[self.row]
        col = self.col
        self.lines[self.row] = line[:col] + char + line[col:]
        self.col = self.goal = col + 1
        self.modified = True
        return ("type", line, col)

    def _enter(self):
        line = self.lines[self.row]
        self.lines[self.row] = line[: self.col]
        self.lines.insert(self.row + 1, line[self.col :])
        self.row += 1
        self.col = self.goal = 0
        self.modified = True
        return ("insert", self.row)

    def _tab(self):
        return self._insert("\t")

    def _backspace(self):
        if self.col > 0:
            line = self.lines[self.row]
            self.lines[self.row] = line[: self.col - 1] + line[self.col :]
            self.col = self.goal = self.col - 1
            self.modified = True
            return "line"
        if self.row == 0:
            return None
        removed = self.lines.pop(self.row)
        self.row -= 1
        self.col = self.goal = len(self.lines[self.row])
        self.lines[self.row] += removed
        self.modified = True
        return ("delete", self.row + 1)

    def _delete(self):
        line = self.lines[self.row]
        if self.col < len(line):
            self.lines[self.row] = line[: self.col] + line[self.col + 1 :]
            self.modified = True
            return "line"
        if self.row == len(self.lines) - 1:
            return None
        self.lines[self.row] += self.lines.pop(self.row + 1)
        self.modified = True
        return ("delete", self.row + 1)

    def _kill_line(self):
        self.modified = True
        self.col = self.goal = 0
        if len(self.lines) == 1:
            self.lines[0] = ""
            return "line"
        self.lines.pop(self.row)
        removed = self.row
        self.row = min(self.row, len(self.lines) - 1)
        return ("delete", removed)

    def _left(self):
        if self.col > 0:
            self.col -= 1
        elif self.row > 0:
            self.row -= 1
            self.col = len(self.lines[self.row])
        self.goal = self.col

    def _right(self):
        if self.col < len(self.lines[self.row]):
            self.col += 1
        elif self.row < len(self.lines) - 1:
            self.row += 1
            self.col = 0
        self.goal = self.col

    def _vertical(self, row: int, top: int | None = None):
        self.row = max(0, min(row, len(self.lines) - 1))
        self.col = min(self.goal, len(self.lines[self.row]))
        if top is not None:
            self.top = max(0, min(top, len(self.lines) - TEXT_ROWS))
            return "all"
        return None

    def _up(self):
        return self._vertical(self.row - 1)

    def _down(self):
        return self._vertical(self.row + 1)

    def _page_up(self):
        return self._vertical(self.row - PAGE_LINES, self.top - PAGE_LINES)

    def _page_down(self):
        return self._vertical(self.row + PAGE_LINES, self.top + PAGE_LINES)

    def _home(self):
        self.col = self.goal = 0

    def _end(self):
        self.col = self.goal = len(self.lines[self.row])

    def _goto_prompt(self):
        self.prompt = ""
        return "message"

    def _prompt_key(self, action: str):
        if len(action) == 1 and "0" <= action <= "9":
            self.prompt += action
        elif action == "<BS>":
            self.prompt = self.prompt[:-1]
        elif action == "<Enter>":
            target = int(self.prompt or "0")
            self.prompt = None
            self.goal = 0
            self._vertical(target - 1)
            self.col = 0
        elif action in ("<C-c>", "<Esc>"):
            self.prompt = None
        else:
            raise EditorError(f"{action!r} at the go-to-line prompt")
        return "message"

    def _quote(self):
        self.quoting = True
        return "message"

    def _save(self):
        self.modified = False
        return "saved"

    def _quit(self):
        self.done = True
        return None

    # ---------------------------------------------------------------- view

    def open(self) -> None:
        """Draw the editor over the shell: alternate screen, scrolling region, every row."""
        self.out.append(f"\x1b[?1049h\x1b[1;{TEXT_ROWS}r")
        self._tcur = (0, 0)  # DECSTBM homes the cursor
        self._status_left = " " * (COLS - RULER_WIDTH)  # the alternate screen starts blank
        self._status_ruler = " " * RULER_WIDTH
        self._scrolled_row: int | None = None  # buffer line drawn with a horizontal offset
        self._draw("all")
        self._show_message(f"[ Read {len(self.lines)} lines ]")
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
        rows.append(self._message)
        return rows

    def expected_cursor(self) -> tuple[int, int]:
        """(row, col) where the terminal cursor should be now, from the model (a test oracle)."""
        if self.prompt is not None:
            return MESSAGE_ROW, len("Go to line: ") + len(self.prompt)
        column = display_width(self.lines[self.row], self.col) - self._offset
        return self.row - self.top, column + (1 if self._offset else 0)

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

    def _show_message(self, text: str) -> None:
        if text != self._message:
            self._sync(MESSAGE_ROW, text, self._message)
            self._message = text

    def _draw(self, damage) -> None:  # profiled: the per-keystroke hot path
        line = self.lines[self.row]
        if self._message and self.prompt is None and not self.quoting:
            self._show_message("")
        # Fast path: a character typed at the end of a short line that is fully on screen
        # (then `_dcol` is the line's width and its row shows it unscrolled).
        if type(damage) is tuple and damage[0] == "type":
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
        if self.prompt is not None:
            self._show_message("Go to line: " + self.prompt)
        elif self.quoting:
            self._show_message("[ Verbatim Input ]")
        elif damage == "saved":
            self._show_message(f"[ Wrote {len(self.lines)} lines ]")
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
            cursor = (MESSAGE_ROW, len("Go to line: ") + len(self.prompt))
        else:
            cursor = (self.row - self.top, self._dcol - self._offset + (1 if self._offset else 0))
        if self._tcur != cursor:
            self.out.append(_cup(*cursor))
            self._tcur = cursor


_KEYS = {
    "<Enter>": Editor._enter,
    "<Tab>": Editor._tab,
    "<BS>": Editor._backspace,
    "<Del>": Editor._delete,
    "<C-k>": Editor._kill_line,
    "<Left>": Editor._left,
    "<Right>": Editor._right,
    "<Up>": Editor._up,
    "<Down>": Editor._down,
    "<PgUp>": Editor._page_up,
    "<PgDn>": Editor._page_down,
    "<Home>": Editor._home,
    "<End>": Editor._end,
    "<C-g>": Editor._goto_prompt,
    "<C-v>": Editor._quote,
    "<C-s>": Editor._save,
    "<C-q>": Editor._quit,
}
