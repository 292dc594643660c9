"""A Python REPL session played in the renderer's terminal: a transcript of statements and
their printed output, typed key by key at `>>> ` after `python3` at the shell prompt, one
frame per key.

A transcript is a list of (statement, output) pairs: `output` is what the statement prints
(lines joined by "\\n"), None when it prints nothing. The person starts at the renderer's own
shell prompt (render/shell.py `prompt_for`), types `python3<Enter>`, sees the banner of
Debian 12's Python and its `>>> ` prompt, types each statement a key at a time (the actions of
schemas/actions.json: one printable character each, then `<Enter>`) and reads what Python
prints (a compound statement, `if ...: ...`, after an empty line at Python's `... `
prompt, as the REPL needs); the screen scrolls as pyte scrolls; `<C-d>` at the last `>>> ` ends the session.
Frames are captured as the recorder captures them (render/terminal.py: code points, fg, bg,
attrs, cursor), frame t being the screen before action t.

Reveals are typed. A pair with output is a reveal of the state, and the answer must be keys
the person presses, so it is not played as Python printing the values but as the person, who
tracks the state, typing them into a comparison that Python answers `True`:

    print(a, b, c)  printing  2 0 1      is typed as   (a, b, c) == (2, 0, 1)
    (a, b)          echoing   (2, 0)     is typed as   (a, b) == (2, 0)

The answer keys are the characters of the values on the right-hand side (`2`, `0`, `1`; not
the brackets, commas and spaces, which the format alone predicts): `answer` marks exactly
those frames. Any statement with output that is neither form (a `print` whose output has not
one word per argument) is refused, naming the entry.

`clear=True` has the person press `<C-l>` after every entry (readline clears the screen and
redraws the prompt at the top), so that no earlier line stays in view.

`reveals="printed"` plays the transcript as Python would show it instead (the statement
typed, its output printed; no answer keys), to watch a trace or compare with the text form.

Untrusted text stays data: a statement is typed, so every character of it must be one the
renderer types as itself (`cells.is_typable`, else a GhframesError); output reaches the screen
only through `shell.visible` (controls and escapes in visible notation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ghframes.errors import GhframesError
from ghframes.render.cells import is_typable
from ghframes.render.shell import prompt_for, visible
from ghframes.render.terminal import COLS, ROWS, Terminal
from ghframes.text import shown

__all__ = [
    "BANNER",
    "PS1",
    "PS2",
    "PYTHON",
    "REVEALS",
    "ReplPlay",
    "play",
    "reveal_line",
    "typed_lines",
]

PYTHON = "python3"  # the command typed at the shell prompt
# What python3 prints on starting, as Debian 12 (bookworm) ships it.
BANNER = (
    "Python 3.11.2 (main, Mar 13 2023, 12:18:29) [GCC 12.2.0] on linux",
    'Type "help", "copyright", "credits" or "license" for more information.',
)
PS1 = ">>> "
PS2 = "... "  # a compound statement asks for more lines; an empty one ends it
TRUE = "True"  # what Python echoes for a reveal typed right
FINAL_ACTION = "<C-d>"  # EOF at `>>> `: python3 exits
CLEAR_ACTION = "<C-l>"  # readline's clear-screen
CLEAR_SCREEN = "\x1b[H\x1b[2J"  # what readline writes for it, before redrawing the prompt
FOLDER = "repl"  # the folder the shell prompt shows
REVEALS = ("typed", "printed")  # how a pair with output is played (see the module's docstring)

_PRINT = re.compile(r"print\((?P<args>.*)\)")
_COMPOUND = re.compile(r"(if|elif|else|for|while|with|try|def|class)\b.*:.*")
_FORMAT = set("()[], ")  # right-hand-side characters the format alone predicts


@dataclass(frozen=True, eq=False)
class ReplPlay:
    """A transcript played: T frames and their actions.

    frames:         uint32 [T, ROWS, COLS] code points (as render/terminal.py captures them)
    planes:         uint8 [3, T, ROWS, COLS] fg, bg, attrs (schemas/frames.json)
    cursor:         uint8 [T, 2] (row, col)
    actions:        T strings, schemas/actions.json keys; action t is pressed on frame t
    answer:         bool [T] action t is an answer key of a reveal
    entry_of_frame: int32 [T] the transcript entry action t types (-1: `python3`, `<C-d>`)
    """

    frames: np.ndarray
    planes: np.ndarray
    cursor: np.ndarray
    actions: list[str]
    answer: np.ndarray
    entry_of_frame: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.actions)


def _split_args(text: str) -> list[str]:
    """`text`'s comma-separated parts at bracket depth 0 (each stripped)."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += c in "([{"
        depth -= c in ")]}"
        if c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def reveal_line(statement: str, output: str) -> tuple[str, list[int]]:
    """A reveal as typed: (the comparison line, the positions in it of the answer keys)."""
    match = _PRINT.fullmatch(statement.strip())
    if match is not None:
        args = _split_args(match["args"])
        values = output.split(" ")
        if len(values) != len(args) or not all(values):
            raise GhframesError(
                f"reveal {shown(repr(statement))}: prints {shown(repr(output))}, not one word "
                f"per argument ({len(args)})"
            )
        left, right = f"({match['args'].strip()})", f"({', '.join(values)})"
    else:
        if "\n" in output:
            raise GhframesError(
                f"reveal {shown(repr(statement))}: an echo of more than one line "
                f"({shown(repr(output))})"
            )
        left, right = statement.strip(), output
    line = f"{left} == {right}"
    start = len(line) - len(right)
    return line, [start + i for i, c in enumerate(right) if c not in _FORMAT]


def typed_lines(
    transcript: list[tuple[str, str | None]], reveals: str = "typed"
) -> list[tuple[str, list[int], str]]:
    """Each entry as played: (line typed at `>>> `, its answer key positions, what Python
    prints after it, "" for nothing)."""
    if reveals not in REVEALS:
        raise GhframesError(f"reveals must be one of {', '.join(REVEALS)}, got {reveals!r}")
    lines = []
    for k, (statement, output) in enumerate(transcript):
        if output is None or reveals == "printed":
            line, answers, printed = statement, [], output or ""
        else:
            (line, answers), printed = reveal_line(statement, output), TRUE
        bad = next((c for c in line if not is_typable(c)), None)
        if bad is not None:
            raise GhframesError(
                f"transcript entry {k}: {shown(repr(statement))} holds a character that is not "
                f"typed as itself ({shown(repr(bad))})"
            )
        lines.append((line, answers, printed))
    return lines


def play(
    transcript: list[tuple[str, str | None]],
    color: bool = True,
    reveals: str = "typed",
    clear: bool = False,
) -> ReplPlay:
    """Play `transcript` at a python3 prompt in a fresh terminal; every frame, one per key.

    clear: after every entry the person presses `<C-l>`, and readline clears the screen and
    redraws the prompt at the top, so that no earlier line stays in view: what the state is
    can then only be remembered, not read off the screen."""
    keys: list[tuple[str, str, int, bool]] = [(c, c, -1, False) for c in PYTHON]
    opening = "".join(line + "\r\n" for line in BANNER) + PS1
    keys.append(("<Enter>", "\r\n" + opening, -1, False))
    for k, (line, answers, printed) in enumerate(typed_lines(transcript, reveals)):
        marked = set(answers)
        keys.extend((c, c, k, i in marked) for i, c in enumerate(line))
        if _COMPOUND.fullmatch(line):  # `if random() < 0.5: a, b = b, a`, then an empty line
            keys.append(("<Enter>", "\r\n" + PS2, k, False))
        out = "".join(visible(part) + "\r\n" for part in printed.split("\n")) if printed else ""
        keys.append(("<Enter>", "\r\n" + out + PS1, k, False))
        if clear:
            keys.append((CLEAR_ACTION, CLEAR_SCREEN + PS1, k, False))
    keys.append((FINAL_ACTION, "", -1, False))

    n = len(keys)
    frames = np.empty((n, ROWS, COLS), np.uint32)
    planes = np.empty((3, n, ROWS, COLS), np.uint8)
    cursor = np.empty((n, 2), np.uint8)
    terminal = Terminal(color)
    terminal.feed(prompt_for(FOLDER, color))
    for t, (_, output, _, _) in enumerate(keys):
        frames[t] = terminal.capture()
        planes[:, t] = terminal.planes
        cursor[t] = terminal.cursor
        terminal.feed(output)
    # everything fed is the renderer's own prompt or visible text
    assert not terminal.unknown_sequences, f"{terminal.unknown_sequences} unknown sequences"
    return ReplPlay(
        frames,
        planes,
        cursor,
        [key[0] for key in keys],
        np.fromiter((key[3] for key in keys), bool, n),
        np.fromiter((key[2] for key in keys), np.int32, n),
    )
