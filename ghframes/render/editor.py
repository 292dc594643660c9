"""The full-screen editor: a buffer model driven by actions, and the minimal ANSI output that draws it.

`Editor(text)` is the model alone (what `verify` and the planner run: it never lexes);
`Editor(text, path, out=[])` also appends, for every action, the bytes a real terminal editor
would write, redrawing only the cells whose character or colour changed (editor_view.py, which
also states the screen's layout and display rules); `color=False` draws the same characters
without any colour or attribute.

The keys are nano's (`nano -i`): `<Enter>` autoindents, `<C-Left>`/`<C-Right>`/`<C-BS>` work
on words, `<C-g>` goes to a line and `<C-f>` searches; schemas/actions.json says what each does.
"""

from __future__ import annotations

# display_width and glyph are re-exported: view/viewer.py imports them from here.
from ghframes.render.cells import display_width as display_width
from ghframes.render.cells import glyph as glyph
from ghframes.render.cells import is_typable
from ghframes.render.editor_view import TEXT_ROWS, EditorView
from ghframes.store.actions import CONTROL

PAGE_LINES = TEXT_ROWS - 2  # lines PgUp/PgDn move; two lines of context stay on screen
GOTO_LABEL = "Go to line: "
SEARCH_LABEL = "Search: "
WRAPPED = "[ Search Wrapped ]"

# After <C-v>, a key of `CONTROL` (schemas/actions.json) inserts its control character; the
# other keys the editor handles are `_KEYS`, at the end of this module.
QUOTE_OF = {char: key for key, char in CONTROL.items()}  # control character -> its key


class EditorError(ValueError):
    """An action the editor cannot take in its current state."""


class Editor(EditorView):
    """The editor's state (`lines`, cursor `row`/`col`, view `top`) and its reaction to actions.

    With `out` a list, every action appends the terminal output that redraws what changed.
    """

    def __init__(
        self,
        text: str,
        path: str = "",
        out: list[str] | None = None,
        autoindent: bool = True,
        color: bool = True,
    ) -> None:
        self.lines = text.split("\n")
        # Off only to verify sessions of renderer version 2 and earlier, typed without it.
        self.autoindent = autoindent
        self.path = path
        self.row = 0
        self.col = 0
        self.goal = 0  # column Up/Down aim for
        self.top = 0
        self.modified = False
        self.prompt: str | None = None  # what was typed at the open prompt; None: no prompt
        self.prompt_label = ""  # the open prompt: GOTO_LABEL or SEARCH_LABEL
        self.quoting = False  # <C-v> pressed: the next key is inserted verbatim
        self.notice = ""  # the message row's notice (a search's outcome, a save); next key clears
        # The row whose only text is the indentation <Enter> just copied, until the next key.
        self.fresh_indent = -1
        self._fresh = -1
        self.done = False
        self.color = color  # with `out`: syntax highlighting and nano's bars; else no SGR at all
        self.out = out
        if out is not None:
            self._init_view()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def press(self, action: str) -> None:
        """Apply one action; raise EditorError if the editor cannot take it (then nothing changes)."""
        if self.done:
            raise EditorError(f"action {action!r} after the editor quit")
        notice, fresh = self.notice, self.fresh_indent
        self.notice = ""
        self.fresh_indent = -1
        self._fresh = fresh  # what <Enter> reads (vim's rule, _enter)
        try:
            if self.prompt is not None:
                if self.prompt_label == GOTO_LABEL:
                    damage = self._goto_key(action)
                else:
                    damage = self._search_key(action)
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
        except EditorError:
            self.notice, self.fresh_indent = notice, fresh
            raise
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

    # Each key returns the damage `_draw` repairs (editor_view.py lists the kinds).

    def _insert(self, char: str):
        line = self.lines[self.row]
        col = self.col
        self.lines[self.row] = line[:col] + char + line[col:]
        self.col = self.goal = col + 1
        self.modified = True
        return ("type", line, col)

    def _enter(self):
        """Split the line at the cursor; the new line starts with the leading blanks (spaces and
        tabs) of this one that lie before the cursor (nano -i's autoindent). An <Enter> right
        after one, on a line holding only the copied indentation, empties that line and moves
        the indentation down (vim's autoindent rule): blank lines stay blank."""
        line = self.lines[self.row]
        col = self.col
        n = 0
        while n < col and line[n] in " \t" and self.autoindent:
            n += 1
        if self._fresh == self.row and n == col == len(line):
            self.lines[self.row] = ""
        else:
            self.lines[self.row] = line[:col]
        self.lines.insert(self.row + 1, line[:n] + line[col:])
        self.row += 1
        self.col = self.goal = n
        self.modified = True
        if n:
            self.fresh_indent = self.row
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

    def _word_left(self):
        if self.col > 0:
            self.col = word_start(self.lines[self.row], self.col)
        elif self.row > 0:
            self.row -= 1
            self.col = len(self.lines[self.row])
        self.goal = self.col

    def _word_right(self):
        line = self.lines[self.row]
        col, end = self.col, len(line)
        if col == end and self.row < len(self.lines) - 1:
            self.row += 1
            col = 0
        else:
            col = word_end(line, col)
        self.col = self.goal = col

    def _word_backspace(self):
        """Delete back to where <C-Left> lands within this line; at column 0, as <BS>."""
        if self.col == 0:
            return self._backspace()
        line = self.lines[self.row]
        start = word_start(line, self.col)
        self.lines[self.row] = line[:start] + line[self.col :]
        self.col = self.goal = start
        self.modified = True
        return "line"

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
        self.prompt, self.prompt_label = "", GOTO_LABEL
        return "message"

    def _goto_key(self, action: str):
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

    def _search_prompt(self):
        self.prompt, self.prompt_label = "", SEARCH_LABEL
        return "message"

    def _search_key(self, action: str):
        if len(action) == 1 and is_typable(action):
            self.prompt += action
        elif action == "<BS>":
            self.prompt = self.prompt[:-1]
        elif action == "<Enter>":
            query, self.prompt = self.prompt, None
            if query:
                self._search(query)
        elif action in ("<C-c>", "<Esc>"):
            self.prompt = None
        else:
            raise EditorError(f"{action!r} at the search prompt")
        return "message"

    def _search(self, query: str) -> None:
        """Move to the first occurrence of `query` after the cursor, wrapping past the end."""
        found = search_from(self.lines, self.row, self.col, query)
        if found is None:
            self.notice = f'[ "{query}" not found ]'
            return
        self.row, self.col, wrapped = found
        if wrapped:
            self.notice = WRAPPED
        self.goal = self.col

    def _quote(self):
        self.quoting = True
        return "message"

    def _save(self):
        self.modified = False
        self.notice = f"[ Wrote {len(self.lines)} lines ]"
        return "message"

    def _quit(self):
        self.done = True
        return None


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def word_start(line: str, col: int) -> int:
    """Where <C-Left> lands from `col` within `line`: back over non-word characters, then over
    word characters (never past column 0)."""
    while col > 0 and not _is_word(line[col - 1]):
        col -= 1
    while col > 0 and _is_word(line[col - 1]):
        col -= 1
    return col


def word_end(line: str, col: int) -> int:
    """Where <C-Right> lands from `col` within `line`: over word characters, then over
    non-word characters (the next word's start, or the line's end)."""
    end = len(line)
    while col < end and _is_word(line[col]):
        col += 1
    while col < end and not _is_word(line[col]):
        col += 1
    return col


def search_from(lines: list[str], row: int, col: int, query: str) -> tuple[int, int, bool] | None:
    """Where searching `lines` for `query` from (row, col) lands: (row, col, wrapped), the first
    occurrence after the cursor, else the first from the top; None when there is none."""
    hit = lines[row].find(query, col + 1)
    if hit >= 0:
        return row, hit, False
    found = _find(lines, query, row + 1, len(lines))
    if found is not None:
        return (*found, False)
    found = _find(lines, query, 0, row + 1)  # the cursor's line again, from its start
    return None if found is None else (*found, True)


def _find(lines: list[str], query: str, start: int, stop: int) -> tuple[int, int] | None:
    """(row, column) of the first occurrence of `query` in `lines[start:stop]`, if any."""
    for row in range(start, stop):
        col = lines[row].find(query)
        if col >= 0:
            return row, col
    return None


_KEYS = {
    "<Enter>": Editor._enter,
    "<Tab>": Editor._tab,
    "<BS>": Editor._backspace,
    "<Del>": Editor._delete,
    "<C-k>": Editor._kill_line,
    "<Left>": Editor._left,
    "<Right>": Editor._right,
    "<C-Left>": Editor._word_left,
    "<C-Right>": Editor._word_right,
    "<C-BS>": Editor._word_backspace,
    "<Up>": Editor._up,
    "<Down>": Editor._down,
    "<PgUp>": Editor._page_up,
    "<PgDn>": Editor._page_down,
    "<Home>": Editor._home,
    "<End>": Editor._end,
    "<C-g>": Editor._goto_prompt,
    "<C-f>": Editor._search_prompt,
    "<C-v>": Editor._quote,
    "<C-s>": Editor._save,
    "<C-q>": Editor._quit,
}
