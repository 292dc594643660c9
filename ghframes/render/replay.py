"""Keystroke planning: the actions that turn a file's `before` text into its `after` text.

A person opens the file, walks to each changed hunk from top to bottom (arrow keys nearby,
the go-to-line prompt further away), edits changed lines in place when they resemble the new
ones (deleting and typing only what differs), otherwise kills the old lines and types the new
ones character by character, each on a line opened with <Enter> at the end of the line above
(the editor autoindents: the planner keeps the indentation it copied as far as the new line
shares it and fixes the rest), then saves. The plan is checked against the editor model as it
is made, so a plan that does not reproduce `after` exactly never leaves this module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from difflib import SequenceMatcher

from ghframes.render.cells import is_typable
from ghframes.render.editor import QUOTE_OF, Editor

NEAR_LINES = 12  # farther than this, go to the line with <C-g>
NEAR_COLUMNS = 16  # farther than this, start from <Home> or <End> when that is shorter
SIMILAR = 0.5  # lines at least this similar are edited in place
MAX_INLINE_DIFF = 2000  # longer lines are retyped rather than diffed character by character
AUTOJUNK_LINES = 4000  # larger files let difflib treat very common lines as junk (speed)


class PlanError(AssertionError):
    """The planner produced keys that do not reproduce `after`: a bug, never bad input."""


@functools.lru_cache(maxsize=65536)
def keys_for_char(char: str) -> tuple[str, ...]:
    """The actions that type `char` into the editor (never a newline)."""
    if char == "\t":
        return ("<Tab>",)
    if is_typable(char):
        return (char,)
    if char in QUOTE_OF:
        return ("<C-v>", QUOTE_OF[char])
    return (f"<U+{ord(char):04X}>",)


def keys_for_text(text: str) -> list[str]:
    """The actions that type `text` (no newlines) character by character."""
    if text.isascii() and text.isprintable():
        return list(text)
    keys: list[str] = []
    for char in text:
        keys.extend(keys_for_char(char))
    return keys


class _Planner:
    def __init__(self, before: str) -> None:
        self.editor = Editor(before)
        self.keys: list[str] = []
        self.typed = 0

    def press(self, *keys: str) -> None:
        press = self.editor.press
        for key in keys:
            press(key)
        self.keys.extend(keys)

    def type(self, text: str) -> None:
        self.typed += len(text)
        self.press(*keys_for_text(text))

    def enter(self) -> None:
        self.typed += 1
        self.press("<Enter>")

    def goto(self, row: int, col: int) -> None:
        ed = self.editor
        distance = row - ed.row
        if abs(distance) > NEAR_LINES:
            self.press("<C-g>", *str(row + 1), "<Enter>")
        elif distance:
            self.press(*(["<Down>"] * distance if distance > 0 else ["<Up>"] * -distance))
        length = len(ed.lines[row])
        here = ed.col
        if col == here:
            return
        if col == 0:
            self.press("<Home>")
        elif col == length:
            self.press("<End>")
        else:
            direct = abs(col - here)
            if direct <= NEAR_COLUMNS or direct <= min(col, length - col):
                start = here
            elif col <= length - col:
                self.press("<Home>")
                start = 0
            else:
                self.press("<End>")
                start = length
            key = "<Right>" if col > start else "<Left>"
            self.press(*[key] * abs(col - start))

    def replace_lines(self, row: int, count: int, new: list[str]) -> None:
        """Kill `count` lines at `row`, then type `new` there, each on a line opened below the
        previous one (so autoindent never copies into text that follows the cursor)."""
        ed = self.editor
        whole = count == len(ed.lines) and count > 0
        if count:
            self.goto(row, 0)
            self.press(*["<C-k>"] * count)
        if not new:
            return
        if whole:  # the buffer is one empty line now
            self.type(new[0])
            rest = new[1:]
        elif row == 0 and not ed.lines[0]:  # an empty first line (a new file): type on it
            self.goto(0, 0)
            self.type(new[0])
            rest = [*new[1:], ""]  # then open the empty line again below
        elif row == 0:  # open an empty first line: at column 0 <Enter> copies no indentation
            self.goto(0, 0)
            self.enter()
            self.press("<Up>")
            self.type(new[0])
            rest = new[1:]
        else:
            self.goto(row - 1, len(ed.lines[row - 1]))
            rest = new
        for line in rest:
            self.open_line(line)

    def open_line(self, line: str) -> None:
        """At the end of a line, <Enter> and type `line` over the indentation it copied: keep
        what `line`'s indentation shares with it, delete the rest, type the remainder."""
        self.enter()
        copied = self.editor.lines[self.editor.row]  # the new line: the copied indentation alone
        keep = 0
        limit = min(len(copied), len(line))
        while keep < limit and copied[keep] == line[keep]:
            keep += 1
        extra = len(copied) - keep
        if keep == 0 and extra > 1:
            self.press("<C-BS>")  # the copied indentation is all there is before the cursor
        elif extra:
            self.press(*["<BS>"] * extra)
        self.type(line[keep:])
        ed = self.editor
        if line and ed.fresh_indent == ed.row and not line.strip(" \t"):
            # Blanks kept as autoindent copied them: the next <Enter> would empty the line
            # (the editor's rule for blank lines), so touch it.
            self.press("<BS>")
            self.type(line[-1])

    def edit_line(self, row: int, old: str, new: str) -> None:
        """Turn line `row` from `old` into `new`, in place if they are alike."""
        if old == new:
            return
        if len(old) > MAX_INLINE_DIFF or len(new) > MAX_INLINE_DIFF:
            self.replace_lines(row, 1, [new])
            return
        matcher = SequenceMatcher(None, old, new, autojunk=False)
        if old and new and matcher.ratio() < SIMILAR:
            self.replace_lines(row, 1, [new])
            return
        shift = 0
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            self.goto(row, i1 + shift)
            self.press(*["<Del>"] * (i2 - i1))
            self.type(new[j1:j2])
            shift += (j2 - j1) - (i2 - i1)


@dataclass(frozen=True)
class EditPlan:
    """The editor actions of one change, from the opened file to the save (quit excluded)."""

    actions: list[str]
    typed: int  # characters typed, newlines included
    inserted: int  # lines added and deleted, as `git commit` counts them
    deleted: int


def git_lines(text: str) -> list[str]:
    """`text` as git counts lines: each with its newline; a last line without one is a line."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def line_changes(before: str, after: str) -> tuple[int, int]:
    """(insertions, deletions) of `before` → `after` for the commit summary, as git counts them.

    Counted on git's lines, not the editor's: the editor shows an empty last line after a final
    newline, which git does not count, and a last line gaining or losing its newline is one line
    deleted and one inserted for git.
    """
    old, new = git_lines(before), git_lines(after)
    matcher = SequenceMatcher(None, old, new, autojunk=len(old) + len(new) > AUTOJUNK_LINES)
    inserted = deleted = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            deleted += i2 - i1
            inserted += j2 - j1
    return inserted, deleted


def plan_edit(before: str, after: str) -> EditPlan:
    """Plan the actions that turn `before` into `after` in the editor, then save."""
    planner = _Planner(before)
    old, new = before.split("\n"), after.split("\n")
    matcher = SequenceMatcher(None, old, new, autojunk=len(old) + len(new) > AUTOJUNK_LINES)
    shift = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        row = i1 + shift
        if tag == "replace" and i2 - i1 == j2 - j1:
            for k in range(i2 - i1):
                planner.edit_line(row + k, old[i1 + k], new[j1 + k])
        else:
            planner.replace_lines(row, i2 - i1, new[j1:j2])
        shift += (j2 - j1) - (i2 - i1)
    planner.press("<C-s>")
    if planner.editor.text != after:
        raise PlanError("planned keys do not reproduce the new text")
    return EditPlan(planner.keys, planner.typed, *line_changes(before, after))
