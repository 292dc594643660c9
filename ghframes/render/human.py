"""The human typist: edits in words and lines, moves like a person, lets autoindent work,
makes typos and fixes them, and takes its time — and still reproduces `after` exactly.

Every key is applied to the editor model as it is chosen, and every choice reads the model's
state (where the cursor is, what autoindent left), so the plan is exact by construction; the
result is checked against `after` all the same. What a person does, in order:

- visits the changed hunks mostly top to bottom, now and then one below before the one above
  (`Habits.revisit`);
- walks to near lines with arrow runs (held keys repeat), reaches far ones by paging, by the
  go-to-line prompt or by searching for a word of the target line (`Habits.far`), and moves
  along a line with word keys, `<Home>`/`<End>` or arrows;
- edits a changed line by words: the cursor goes to the end of each changed run of words,
  deletes it backwards (`<BS>`, or `<C-BS>` for whole words) and types the new words; a line
  that is mostly new is deleted back to its indentation, or cut with `<C-k>`, and retyped;
- opens new lines with `<Enter>` at the end of the line above (`<Home> <Enter> <Up>` at the
  top of the file) and types only the indentation autoindent did not copy;
- cuts deleted lines with `<C-k>`;
- mistypes letters (adjacent keys, transpositions, omissions, doubled letters) at its typo
  rate, notices most within a few keys and backspaces over them, fixes some after the word by
  moving back (`Habits.late_fix`).
"""

from __future__ import annotations

import os
import random
import re
from difflib import SequenceMatcher

from ghframes.render.editor import PAGE_LINES, Editor, search_from, word_end, word_start
from ghframes.render.habits import Clock, Habits
from ghframes.render.replay import AUTOJUNK_LINES, PlanError, keys_for_char, line_changes
from ghframes.render.typed import TypedEdit

SIMILAR = 0.5  # lines whose words are at least this similar are edited in place
MAX_INLINE = 400  # longer lines are retyped rather than diffed word by word
NEAR_COLUMNS = 16  # farther along a line, start from <Home> or <End> when that is closer
MAX_PAGES = 4  # farther than this many pages, go to the line or search instead of paging
MAX_NOTICE_KEYS = 6  # a typo is noticed at most this many keys later
SEARCH_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{3,}")  # words worth searching for
TOKENS = re.compile(r"\w+|\s+|[^\w\s]")
LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_QWERTY = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Each letter's neighbours on a QWERTY keyboard: where a slipping finger lands.
NEIGHBOURS = {}
for _r, _row in enumerate(_QWERTY):
    for _c, _key in enumerate(_row):
        NEIGHBOURS[_key] = "".join(
            _QWERTY[r][c]
            for r in (_r - 1, _r, _r + 1)
            for c in (_c - 1, _c, _c + 1)
            if 0 <= r < 3 and 0 <= c < len(_QWERTY[r]) and (r, c) != (_r, _c)
        )
TYPO_KINDS = ("substitute", "omit", "transpose", "double")
TYPO_WEIGHTS = (0.45, 0.2, 0.15, 0.2)  # slips, then omissions, doublings, swaps (Dhakal et al.)


def _shared(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def indentation(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


class HumanTypist:
    """Plans one change: `keys`, `times` (ms before each key), `typed`, `typos`."""

    def __init__(self, before: str, habits: Habits, rng: random.Random) -> None:
        self.editor = Editor(before)
        self.habits = habits
        self.rng = rng
        self.clock = Clock(habits, rng)
        self.keys: list[str] = []
        self.times: list[int] = []
        self.typed = 0
        self.typos = 0
        self._pause: str | None = "read"  # the next key comes after this pause

    # ------------------------------------------------------------ keys and time

    def press(self, key: str, ms: int) -> None:
        if self._pause is not None:
            ms = self.clock.pause(self._pause)
            self._pause = None
        self.editor.press(key)
        self.keys.append(key)
        self.times.append(ms)

    def run(self, key: str, n: int) -> None:
        for ms in self.clock.run(n):
            self.press(key, ms)

    def type_text(self, text: str) -> None:
        """Type `text` (no newline) at the cursor, with the person's typos and their fixes."""
        rate = self.habits.typo_rate
        random_ = self.rng.random
        key = self.clock.key
        i, n = 0, len(text)
        while i < n:
            char = text[i]
            if rate and char in LETTERS and random_() < rate:
                i = self._typo(text, i)
                continue
            kind = "word" if i and text[i - 1] == " " else "char"
            for k in keys_for_char(char):
                self.press(k, key(kind))
            i += 1
        self.typed += n

    def _typo(self, text: str, i: int) -> int:
        """Mistype `text[i]` (a letter), go on a few keys, fix it; return where typing resumes."""
        rng = self.rng
        char = text[i]
        kind = rng.choices(TYPO_KINDS, TYPO_WEIGHTS)[0]
        if kind == "transpose" and not (i + 1 < len(text) and text[i + 1] in LETTERS):
            kind = "double"
        if kind == "substitute":
            slip = rng.choice(NEIGHBOURS[char.lower()])
            wrong, meant = [slip.upper() if char.isupper() else slip], 1
        elif kind == "omit":
            wrong, meant = [], 1
        elif kind == "transpose":
            wrong, meant = [text[i + 1], char], 2
        else:
            wrong, meant = [char, char], 1
        self.typos += 1
        key = self.clock.key
        for k in wrong:
            self.press(k, key("char"))
        # Keys typed on before the typo is seen: plain characters only.
        j = i + meant
        while (
            j < len(text)
            and j - i - meant < MAX_NOTICE_KEYS
            and len(keys_for_char(text[j])) == 1
            and keys_for_char(text[j])[0] == text[j]
            and rng.random() > self.habits.notice
        ):
            self.press(text[j], key("char"))
            j += 1
        after = j - i - meant  # correct keys typed after the mistake
        if kind in ("substitute", "double") and after and rng.random() < self.habits.late_fix:
            # Seen only now: back over the good keys, fix the one, and return.
            self.press("<Left>", self.clock.pause("notice"))
            self.run("<Left>", after - 1)
            self.press("<BS>", key("bs"))
            if kind == "substitute":
                self.press(char, key("char"))
            line = self.editor.lines[self.editor.row]
            if self.editor.col + after == len(line):
                self.press("<End>", key("tap"))
            else:
                self.run("<Right>", after)
            return j
        back = len(wrong) + after
        if not back:  # an omission seen before the next key: it never happened
            self.typos -= 1
        for k in range(back):
            self.press("<BS>", self.clock.pause("notice") if not k else key("bs"))
        for c in text[i:j]:
            self.press(c, key("char"))
        return j

    # ------------------------------------------------------------ moving

    def goto(self, row: int, col: int | None) -> None:
        """Move to (row, col); with `col` None, anywhere on the row."""
        ed = self.editor
        far = ("page", "goto", "search")
        for attempt in range(4):
            distance = row - ed.row
            if not distance:
                break
            if abs(distance) <= self.habits.near_lines or attempt == 3:
                self.run("<Down>" if distance > 0 else "<Up>", abs(distance))
                break
            weights = self.habits.far
            if abs(distance) > MAX_PAGES * PAGE_LINES:  # nobody pages that far
                weights = (0.0, *weights[1:])
            how = self.rng.choices(far, weights)[0] if sum(weights) else "goto"
            if how == "search" and self._search(row):
                continue
            if how == "goto" or how == "search":
                self.press("<C-g>", self.clock.pause("prompt"))
                for digit in str(row + 1):
                    self.press(digit, self.clock.key())
                self.press("<Enter>", self.clock.key("enter"))
                continue
            pages = max(1, round(abs(distance) / PAGE_LINES))
            for _ in range(pages):
                self.press("<PgDn>" if distance > 0 else "<PgUp>", self.clock.pause("page"))
        if col is not None:
            self.along(col)

    def _search(self, row: int) -> bool:
        """Search for a word of line `row` that the search finds there first; False if none."""
        ed = self.editor
        target = ed.lines[row]
        words = sorted({m.group() for m in SEARCH_WORD.finditer(target)}, key=len, reverse=True)
        for word in words[:3]:
            for query in dict.fromkeys((word[:6], word)):
                hit = search_from(ed.lines, ed.row, ed.col, query)
                if hit is not None and hit[0] == row:
                    self.press("<C-f>", self.clock.pause("prompt"))
                    for k, char in enumerate(query):
                        self.press(char, self.clock.key("word" if not k else "char"))
                    self.press("<Enter>", self.clock.key("enter"))
                    return True
        return False

    def along(self, col: int) -> None:
        """Move along the cursor's line to `col`."""
        ed = self.editor
        here = ed.col
        if col == here:
            return
        line = ed.lines[ed.row]
        n = len(line)
        tap = self.clock.key
        if col == n:
            self.press("<End>", tap("tap"))
            return
        if col == 0:
            self.press("<Home>", tap("tap"))
            return
        if abs(col - here) > 3 and self.rng.random() < self.habits.word_motion:
            step, key = (word_end, "<C-Right>") if col > here else (word_start, "<C-Left>")
            while True:
                landing = step(line, ed.col)
                if landing == ed.col or (landing > col if col > here else landing < col):
                    break
                self.press(key, tap("tap"))
            here = ed.col
            if here == col:
                return
        direct = abs(col - here)
        if direct > NEAR_COLUMNS and min(col, n - col) < direct:
            if col <= n - col:
                self.press("<Home>", tap("tap"))
                here = 0
            else:
                self.press("<End>", tap("tap"))
                here = n
        self.run("<Right>" if col > here else "<Left>", abs(col - here))

    # ------------------------------------------------------------ editing

    def delete_back(self, floor: int) -> None:
        """Delete from the cursor back to column `floor` of its line, by words where whole."""
        ed = self.editor
        first = True
        while ed.col > floor:
            target = word_start(ed.lines[ed.row], ed.col)
            whole = target >= floor and ed.col - target >= 2
            key = "<C-BS>" if whole and self.rng.random() < self.habits.word_delete else "<BS>"
            self.press(key, self.clock.key("tap" if first else "bs"))
            first = False

    def new_line(self, line: str, then_more: bool = False) -> None:
        """`<Enter>` at the cursor, then type `line` over what autoindent copied. An empty line
        with another new line after it keeps the copied indentation: the next `<Enter>` empties
        it (the editor's rule)."""
        indent = indentation(line)
        stays_blank = len(indent) == len(line)
        blank_then_more = not line and then_more
        self.press("<Enter>", self.clock.key("enter"))
        self.typed += 1
        if blank_then_more:
            return
        ed = self.editor
        copied = ed.lines[ed.row][: ed.col]  # what autoindent copied
        keep = _shared(copied, indent)
        extra = len(copied) - keep
        if extra > 1 and keep == 0:
            self.press("<C-BS>", self.clock.key("bs"))  # all of it: whitespace is not a word
        else:
            for _ in range(extra):
                self.press("<BS>", self.clock.key("bs"))
        self.type_text(indent[keep:])
        if stays_blank and indent and ed.fresh_indent == ed.row:
            # Blanks kept as autoindent copied them, on a line that stays blank: the next
            # <Enter> would empty it (the editor's rule), so touch it.
            self.press("<BS>", self.clock.key("bs"))
            self.type_text(indent[-1])
        self.type_text(line[len(indent) :])

    def open_lines(self, at: int, lines: list[str]) -> None:
        """Make `lines` the buffer's lines `at`…, opening them as a person does."""
        ed = self.editor
        if at > 0:
            self.goto(at - 1, len(ed.lines[at - 1]))
            for k, line in enumerate(lines):
                self.new_line(line, k + 1 < len(lines))
            return
        empty = ed.lines == [""]
        self.goto(0, 0)
        if not empty:  # a line above the first: <Home> <Enter> <Up>, then type there
            self.press("<Enter>", self.clock.key("enter"))
            self.press("<Up>", self.clock.key("tap"))
            self.typed += 1
        self.type_text(lines[0])
        for k in range(1, len(lines)):
            self.new_line(lines[k], k + 1 < len(lines))
        if empty:  # the empty buffer's one line was typed over: open the line that follows
            self.new_line("")

    def edit_line(self, row: int, old: str, new: str) -> None:
        """Turn line `row` from `old` into `new`: by words when alike, else retyped."""
        if old == new:
            return
        old_tokens, new_tokens = TOKENS.findall(old), TOKENS.findall(new)
        if len(old) > MAX_INLINE or len(new) > MAX_INLINE or not old.strip():
            self.rewrite_line(row, old, new)
            return
        matcher = SequenceMatcher(None, old_tokens, new_tokens, autojunk=False)
        if new.strip() and matcher.ratio() < SIMILAR:
            self.rewrite_line(row, old, new)
            return
        # Character spans of the changed runs of words; runs one character apart are one run.
        starts = [0]
        for token in old_tokens:
            starts.append(starts[-1] + len(token))
        spans: list[list] = []
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            a, b, text = starts[i1], starts[i2], "".join(new_tokens[j1:j2])
            if spans and a - spans[-1][1] <= 1:
                last = spans[-1]
                last[2] += old[last[1] : a] + text
                last[1] = b
            else:
                spans.append([a, b, text])
        shift = 0
        for a, b, text in spans:
            self.goto(row, b + shift)
            self.delete_back(a + shift)
            self.type_text(text)
            shift += len(text) - (b - a)

    def rewrite_line(self, row: int, old: str, new: str) -> None:
        """Delete line `row`'s text back to the indentation it shares with `new`, type the rest;
        or cut the whole line and type `new` in its place."""
        ed = self.editor
        keep = _shared(indentation(old), indentation(new))
        if (
            len(ed.lines) > 1
            and old.strip()
            and (len(old) > 80 or self.rng.random() < self.habits.cut_lines)
        ):
            self.goto(row, None)
            self.press("<C-k>", self.clock.key("tap"))
            self.open_lines(row, [new])
            return
        self.goto(row, len(old))
        self.delete_back(keep)
        self.type_text(new[keep:])

    def hunk(self, row: int, old: list[str], new: list[str]) -> None:
        """Replace buffer lines `row`… (`old`) by `new`."""
        self._pause = self._pause or "think"
        pairs = min(len(old), len(new))
        for k in range(pairs):
            self.edit_line(row + k, old[k], new[k])
        if len(old) > len(new):
            self.goto(row + pairs, None)
            self.run("<C-k>", len(old) - len(new))
        elif len(new) > len(old):
            self.open_lines(row + pairs, new[pairs:])


def plan_edit(before: str, after: str, habits: Habits, rng: random.Random) -> TypedEdit:
    """The human typist's keys and times that turn `before` into `after`, then save."""
    typist = HumanTypist(before, habits, rng)
    old, new = before.split("\n"), after.split("\n")
    matcher = SequenceMatcher(None, old, new, autojunk=len(old) + len(new) > AUTOJUNK_LINES)
    hunks = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    order = list(range(len(hunks)))
    k = 0
    while k < len(order) - 1:
        if rng.random() < habits.revisit:
            order[k], order[k + 1] = order[k + 1], order[k]
            k += 1
        k += 1
    done: list[tuple[int, int]] = []  # (old first line, lines added) of the hunks done
    for h in order:
        _, i1, i2, j1, j2 = hunks[h]
        row = i1 + sum(grown for start, grown in done if start < i1)
        typist.hunk(row, old[i1:i2], new[j1:j2])
        done.append((i1, (j2 - j1) - (i2 - i1)))
    typist._pause = "save"
    typist.press("<C-s>", 0)
    if typist.editor.text != after:
        raise PlanError("the human typist's keys do not reproduce the new text")
    return TypedEdit(
        typist.keys, typist.times, typist.typed, *line_changes(before, after), typist.typos
    )
