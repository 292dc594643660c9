"""The shell's input line for the environment (environment.py): readline's editing keys drawn
into the terminal, and the words bash splits a command line into.

The renderer only ever types a command at the end of the line, each character echoed as
itself; that path is kept byte for byte. Every other edit redraws the line from its start
(readline writes fewer bytes for the same screen): the cursor goes to where the input begins,
the line is written, the rest of the screen below is erased, and the cursor goes back to the
point. Positions are counted in cells with pyte's widths; a wide character that wraps early at
the right edge is the one case where the count and the screen disagree.
"""

from __future__ import annotations

from ghframes.render.cells import cells_width
from ghframes.render.editor import word_start
from ghframes.render.terminal import COLS, ROWS, Terminal

CONTINUATION = "> "  # bash's PS2: the command's quote is still open
ERASE_BELOW = "\x1b[J"
_MOVES = {"<Left>": -1, "<C-b>": -1, "<Right>": 1, "<C-f>": 1}
_WHITESPACE = " \t"


def _cup(offset: int) -> str:
    """Cursor position at `offset` cells from the screen's top left (row * COLS + col)."""
    row, col = divmod(max(offset, 0), COLS)
    return f"\x1b[{min(row, ROWS - 1) + 1};{col + 1}H"


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _word_forward(line: str, point: int) -> int:
    """Where readline's forward-word lands: past non-word characters, then to the word's end."""
    end = len(line)
    while point < end and not _is_word(line[point]):
        point += 1
    while point < end and _is_word(line[point]):
        point += 1
    return point


class Prompt:
    """The line being typed at the prompt, its point (cursor), the kill buffer and history.

    `type(char)` inserts a character, `edit(action)` applies an editing key (any other key does
    nothing); `take()` ends the line and returns the command typed (with the lines of an open
    quote before it).
    """

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.line: list[str] = []
        self.point = 0
        self.pending = ""  # earlier lines of a command whose quote is open
        self.history: list[str] = []
        self._recall = 0  # position in the history while <Up>/<Down> walk it
        self._kill = ""
        self._origin = 0  # where the input begins: cells from the screen's top left

    def show(self, prompt: str) -> None:
        """Draw a prompt; the input line starts where it ends."""
        self.terminal.feed(prompt)
        self._origin = self._at()

    def _at(self) -> int:
        """The terminal cursor, in cells from the top left (a pending wrap: the next row's
        start)."""
        cursor = self.terminal.screen.cursor
        return cursor.y * COLS + cursor.x

    @property
    def empty(self) -> bool:
        return not self.line and not self.pending

    def type(self, char: str) -> None:
        """Insert a printable character at the point."""
        self.line.insert(self.point, char)
        self.point += 1
        if self.point == len(self.line):
            self.terminal.feed(char)  # echoed, as the render types every command
        else:
            self._redraw()

    def edit(self, action: str) -> None:
        """Apply one of readline's (emacs mode) editing keys; any other key does nothing."""
        line, point = self.line, self.point
        if action in ("<BS>", "<C-h>", "<C-?>"):
            if point:
                del line[point - 1]
                self.point -= 1
                self._redraw()
        elif action in ("<Del>", "<C-d>"):
            if point < len(line):
                del line[point]
                self._redraw()
        elif action in _MOVES:
            self._move(point + _MOVES[action])
        elif action in ("<Home>", "<C-a>"):
            self._move(0)
        elif action in ("<End>", "<C-e>"):
            self._move(len(line))
        elif action == "<C-Left>":
            self._move(word_start("".join(line), point))
        elif action == "<C-Right>":
            self._move(_word_forward("".join(line), point))
        elif action == "<C-k>":
            self._cut(point, len(line))
        elif action == "<C-u>":
            self._cut(0, point)
        elif action == "<C-w>":  # unix-word-rubout: back to whitespace
            start = point
            while start and line[start - 1] in _WHITESPACE:
                start -= 1
            while start and line[start - 1] not in _WHITESPACE:
                start -= 1
            self._cut(start, point)
        elif action == "<C-BS>":
            self._cut(word_start("".join(line), point), point)
        elif action == "<C-y>":
            line[point:point] = self._kill
            self.point += len(self._kill)
            self._redraw()
        elif action in ("<Up>", "<C-p>", "<Down>", "<C-n>"):
            self._walk_history(-1 if action in ("<Up>", "<C-p>") else 1)

    def cancel(self, prompt: str) -> None:
        """<C-c>: `^C`, the line dropped, a new prompt."""
        self._to_end()
        self.terminal.feed("^C\r\n")
        self.line, self.point, self.pending = [], 0, ""
        self._recall = len(self.history)
        self.show(prompt)

    def clear_screen(self, prompt: str) -> None:
        """<C-l>: the screen cleared, the prompt and the line at its top."""
        self.terminal.feed("\x1b[H\x1b[2J")
        self.show(CONTINUATION if self.pending else prompt)
        self._redraw()

    def take(self) -> str:
        """End the line (the cursor to its end): the command typed, open quote lines first."""
        self._to_end()
        command = self.pending + "".join(self.line)
        self.line, self.point = [], 0
        return command

    def more(self, command: str) -> None:
        """`command` leaves a quote open: bash asks for the rest on a `> ` line."""
        self.pending = command + "\n"
        self.terminal.feed("\r\n")
        self.show(CONTINUATION)

    def remember(self, command: str) -> None:
        """`command` was run: into the history, which <Up> walks from the end again."""
        self.pending = ""
        if command.strip():
            self.history.append(command)
        self._recall = len(self.history)

    def _move(self, point: int) -> None:
        point = max(0, min(point, len(self.line)))
        if point != self.point:
            self.point = point
            self.terminal.feed(_cup(self._origin + cells_width("".join(self.line[:point]))))

    def _cut(self, start: int, end: int) -> None:
        if start < end:
            self._kill = "".join(self.line[start:end])
            del self.line[start:end]
            self.point = start
            self._redraw()

    def _redraw(self) -> None:
        """Write the line again from its start, erase what is after it, and put the cursor at
        the point (the origin moves up when writing scrolled the screen)."""
        text = "".join(self.line)
        self.terminal.feed(_cup(self._origin) + text + ERASE_BELOW)
        self._origin = self._at() - cells_width(text)
        if self.point < len(self.line):
            self.terminal.feed(_cup(self._origin + cells_width(text[: self.point])))

    def _to_end(self) -> None:
        self._move(len(self.line))

    def _walk_history(self, direction: int) -> None:
        recall = self._recall + direction
        if not 0 <= recall <= len(self.history):
            return
        self._recall = recall
        self.line = list(self.history[recall] if recall < len(self.history) else "")
        self.point = len(self.line)
        self._redraw()


def shell_words(line: str) -> list[str] | None:
    """The words bash splits `line` into, quotes removed (`'…'`, `"…"`, backslash, `$'…'`), or
    None when a quote or a trailing backslash leaves it open. Nothing else is expanded."""
    words: list[str] = []
    word: list[str] | None = None
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t\n":
            if word is not None:
                words.append("".join(word))
                word = None
            i += 1
            continue
        if word is None:
            word = []
        if c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                return None
            word.append(line[i + 1 : end])
            i = end + 1
        elif c == '"':
            i = _double_quoted(line, i + 1, word)
        elif c == "$" and line.startswith("$'", i):
            i = _ansi_c(line, i + 2, word)
        elif c == "\\":
            if i + 1 >= n:
                return None
            if line[i + 1] != "\n":  # backslash-newline continues the line
                word.append(line[i + 1])
            i += 2
        else:
            word.append(c)
            i += 1
        if i < 0:
            return None
    if word is not None:
        words.append("".join(word))
    return words


def _double_quoted(line: str, i: int, word: list[str]) -> int:
    """Read a `"…"` word's body from `line[i:]` into `word`; where it ends, or -1 if open."""
    n = len(line)
    while i < n:
        c = line[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < n and line[i + 1] in '"\\$`\n':
            if line[i + 1] != "\n":
                word.append(line[i + 1])
            i += 2
            continue
        word.append(c)
        i += 1
    return -1


_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
    "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?",
}  # fmt: skip
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


def _ansi_c(line: str, i: int, word: list[str]) -> int:
    """Read a `$'…'` word's body from `line[i:]` into `word` (bash's ANSI-C escapes); where it
    ends, or -1 if open."""
    n = len(line)
    while i < n:
        c = line[i]
        if c == "'":
            return i + 1
        if c != "\\" or i + 1 >= n:
            word.append(c)
            i += 1
            continue
        e = line[i + 1]
        if e in _SIMPLE_ESCAPES:
            word.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e in _HEX_DIGITS:
            j = i + 2
            while j < min(n, i + 2 + _HEX_DIGITS[e]) and line[j] in "0123456789abcdefABCDEF":
                j += 1
            code = int(line[i + 2 : j], 16) if j > i + 2 else None
            word.append(line[i : i + 2] if code is None else chr(min(code, 0x10FFFF)))
            i = j
        elif e in "01234567":
            j = i + 1
            while j < min(n, i + 4) and line[j] in "01234567":
                j += 1
            word.append(chr(int(line[i + 1 : j], 8)))
            i = j
        else:
            word.append(line[i : i + 2])
            i += 2
    return -1
