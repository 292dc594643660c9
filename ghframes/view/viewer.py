"""`ghframes view DATA [--session ID]`: a terminal player for rendered sessions (curses).

Without --session, a list of sessions to pick from. The player decodes frames a chunk at a
time (ghframes.store.chunks), so opening is instant at any session length. In a terminal smaller
than 160x48 (plus two status lines) it shows a viewport that follows the cursor and can be
panned, and says so. Cells are drawn in their colours and attributes as far as the terminal
can show them (palette.CursesStyles: 256 colours, the nearest of 16 or 8, or attributes only).
The terminal is restored on exit, Ctrl-C and errors (curses.endwin in a `finally`). Keys: see
HELP below and the README.
"""

from __future__ import annotations

import contextlib
import curses
import locale
import os
import sys
import time

import numpy as np

from ghframes.errors import GhframesError
from ghframes.render.editor import display_width, glyph
from ghframes.store.chunks import LazySession, list_sessions, open_lazy
from ghframes.store.geometry import COLS, ROWS, WIDE_STUB
from ghframes.store.search import SearchCancelled
from ghframes.view.palette import CursesStyles, styles_of

MIN_W, MIN_H = 40, 6
UNICODE = [True]  # whether the terminal's locale encodes UTF-8 (set by run)
SPEEDS = [1, 2, 5, 10, 20, 30, 60, 120, 250, 500, 1000, 2500]  # frames per second
SIDE = 24  # width of the action column shown beside the screen when there is room

SEARCH_POLL_S = 0.1  # a running search redraws its progress and reads the keyboard this often

# `?` shows these over the bottom of the screen, wrapped to the terminal's width (ASCII only,
# so a terminal without UTF-8 shows them too)
HELP = (
    "space play/pause",
    "+/- speed",
    "./, or Right/Left step",
    "]/[ or PgDn/PgUp 100 frames",
    "g go to frame N or N%",
    "}/{ next/previous commit",
    "/ search",
    "n/N next/previous match",
    "any key stops a search",
    "hjkl pan",
    "f follow the cursor",
    "Home/End first/last frame",
    "q quit",
)


class Player:
    def __init__(self, session: LazySession, start: int = 0, styles=None) -> None:
        self.s = session
        self.styles = styles if styles is not None else CursesStyles()
        self.t = min(max(start, 0), max(len(session) - 1, 0))
        self.playing = False
        self.speed = SPEEDS.index(30)
        self.top = 0
        self.left = 0
        self.follow = True
        self.query = ""
        self.message = ""
        self.help = False  # the key list shows until the next key

    # -- navigation -------------------------------------------------------------------------
    def goto(self, t: int) -> None:
        self.t = min(max(t, 0), len(self.s) - 1)

    def next_commit(self, direction: int) -> None:
        starts = [c.first_frame for c in self.s.commits]
        if direction > 0:
            later = [f for f in starts if f > self.t]
            if later:
                self.goto(later[0])
            else:
                self.message = "no later commit"
        else:
            earlier = [f for f in starts if f < self.t]
            if earlier:
                self.goto(earlier[-1])
            else:
                self.message = "no earlier commit"

    def goto_text(self, text: str) -> None:
        text = text.strip()
        try:
            if text.endswith("%"):
                pct = float(text[:-1])
                if not 0 <= pct <= 100:
                    raise ValueError
                self.goto(round(pct / 100 * (len(self.s) - 1)))
            else:
                n = int(text)
                if not 0 <= n < len(self.s):
                    self.message = f"frame {n} is out of range (0..{len(self.s) - 1})"
                    return
                self.goto(n)
        except ValueError:
            self.message = f"not a frame number or percentage: {text!r}"

    def search(self, scr, start: int, backward: bool = False) -> None:
        """Go to the first frame from `start` (inclusive) that shows the last search string."""
        if not self.query:
            self.message = "no search yet: press /"
            return
        if start < 0 or start >= len(self.s):
            hit = None
        else:
            try:
                hit = self.s.search(self.query, start, backward, self.search_progress(scr))
            except SearchCancelled as stop:
                self.message = f"search cancelled at frame {stop.frame}"
                return
        if hit is None:
            where = "before this frame" if backward else "after this frame"
            if start == self.t:
                where = "from this frame on"
            self.message = f"{self.query!r} not found {where}"
        else:
            self.goto(hit)
            self.message = f"found {self.query!r} at frame {hit}"

    def search_progress(self, scr):
        """The `cancel` callback of a search: every SEARCH_POLL_S it shows how far the search
        got and reads the keyboard without waiting; any key (Esc, say) stops the search. A
        long session takes seconds to search; Ctrl-C still quits (SIGINT, not a key)."""
        h, w = scr.getmaxyx()
        n = len(self.s)
        last = [float("-inf")]

        def cancel(t: int) -> bool:
            now = time.monotonic()
            if now - last[0] < SEARCH_POLL_S:
                return False
            last[0] = now
            line = f"searching for {self.query!r} ... frame {t}/{n} - any key stops"
            _put(scr, h - 1, 0, line.ljust(w), w)
            scr.refresh()
            scr.timeout(0)
            try:
                key = scr.get_wch()
            except curses.error:  # no key waiting
                return False
            return key != curses.KEY_RESIZE

        return cancel

    # -- drawing ----------------------------------------------------------------------------
    def layout(self, h: int, w: int) -> tuple[int, int, bool]:
        """(rows, cols) of the screen area shown, and whether actions fit beside it."""
        rows = min(ROWS, h - 2)
        side = w >= COLS + 1 + SIDE
        cols = min(COLS, w)
        return rows, cols, side

    def place_viewport(self, rows: int, cols: int) -> None:
        if self.follow:
            cy, cx = (int(v) for v in self.s.cursor[self.t])
            if cy < self.top or cy >= self.top + rows:
                self.top = cy - rows // 2
            if cx < self.left or cx >= self.left + cols:
                self.left = cx - cols // 2
        self.top = min(max(self.top, 0), ROWS - rows)
        self.left = min(max(self.left, 0), COLS - cols)

    def draw(self, scr) -> None:
        h, w = scr.getmaxyx()
        if h < MIN_H or w < MIN_W:
            raise GhframesError(
                f"the terminal is {w}x{h}; the viewer needs at least {MIN_W}x{MIN_H}"
            )
        rows, cols, side = self.layout(h, w)
        self.place_viewport(rows, cols)
        frame = self.s.frame(self.t)
        styles = styles_of(*self.s.colours(self.t))
        self.styles.begin_frame()
        scr.erase()
        for y in range(rows):
            row = frame[self.top + y, self.left : self.left + cols].tolist()
            if row and row[0] == WIDE_STUB:
                row[0] = 32  # the left half of this wide character is outside the viewport
            if self.left + cols < COLS and frame[self.top + y, self.left + cols] == WIDE_STUB:
                row[-1] = 32  # a wide character whose right half falls outside: never half-draw
            keys = styles[self.top + y, self.left : self.left + cols]
            cuts = [0, *(np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist(), len(row)]
            for a, b in zip(cuts, cuts[1:], strict=False):  # one write per run of one style
                while UNICODE[0] and a < b and row[a] == WIDE_STUB:
                    a += 1  # a stub after a style change: its character is already drawn
                if UNICODE[0]:
                    text = "".join(chr(c) for c in row[a:b] if c != WIDE_STUB)
                else:  # a terminal without UTF-8: one ASCII character per cell
                    text = "".join(chr(c) if 32 <= c < 127 else "?" for c in row[a:b])
                _put(scr, y, a, text, w, self.styles.attr(int(keys[a])) if a < b else 0)
        if side:
            self.draw_actions(scr, rows, COLS + 1, min(SIDE, w - COLS - 1))
        cy, cx = (int(v) for v in self.s.cursor[self.t])
        if self.top <= cy < self.top + rows and self.left <= cx < self.left + cols:
            with contextlib.suppress(curses.error):
                scr.chgat(cy - self.top, cx - self.left, 1, curses.A_REVERSE)
        if self.help:
            self.draw_help(scr, rows, w)
        self.draw_status(scr, h, w, rows, cols)
        scr.refresh()

    def draw_actions(self, scr, rows: int, x: int, width: int) -> None:
        half = rows // 2
        for y in range(rows):
            t = self.t - half + y
            if 0 <= t < len(self.s):
                text = f"{t:>8} {self.s.actions[t]}"[:width]
                attr = curses.A_REVERSE if t == self.t else 0
                _put(scr, y, x, text.ljust(width) if attr else text, x + width, attr)

    def draw_help(self, scr, rows: int, w: int) -> None:
        """The key list over the bottom rows of the screen area, wrapped at whole entries."""
        lines, line = ["keys (this list closes at the next key)"], ""
        for entry in HELP:
            if line and len(line) + 3 + len(entry) > w:
                lines.append(line)
                line = entry
            else:
                line = f"{line} | {entry}" if line else entry
        lines.append(line)
        if len(lines) > rows:  # a very small terminal: what fits, and where the rest is
            lines = lines[: rows - 1] + ["more keys in a larger terminal"]
        for y, line in enumerate(lines, start=rows - len(lines)):
            _put(scr, y, 0, line.ljust(w), w, curses.A_REVERSE if y == rows - len(lines) else 0)

    def draw_status(self, scr, h: int, w: int, rows: int, cols: int) -> None:
        n = len(self.s)
        commit = self.s.commit_at(self.t)
        change = self.s.change_at(self.t)
        state = ("▶" if self.playing else "❚❚") if UNICODE[0] else ("|>" if self.playing else "||")
        pct = 100 * self.t / max(n - 1, 1)
        parts = [
            f"{state} frame {self.t}/{n} {pct:.1f}%",
            f"{SPEEDS[self.speed]} f/s",
            f"action {self.s.actions[self.t]}",
        ]
        if commit is not None:
            parts.append(f"commit {commit.id[:7]} {commit.message}")
        if change is not None:
            parts.append(f"file {change['path']}")
        _put(scr, h - 2, 0, " | ".join(parts).ljust(w), w, curses.A_REVERSE)
        if self.message:
            line = self.message
        elif rows < ROWS or cols < COLS:
            line = (
                f"viewport {cols}x{rows} of {COLS}x{ROWS} at row {self.top} col {self.left}"
                f" ({'following the cursor' if self.follow else 'panned: f follows'}; hjkl pan)"
                f" - ? help"
            )
        else:
            line = "? help  q quit"
        _put(scr, h - 1, 0, line, w)

    # -- input ------------------------------------------------------------------------------
    def prompt(self, scr, label: str) -> str | None:
        """Read a line on the bottom row; None when Esc cancels."""
        h, w = scr.getmaxyx()
        text = ""
        scr.timeout(-1)
        with contextlib.suppress(curses.error):
            curses.curs_set(1)
        try:
            while True:
                shown = text
                while shown and display_width(label + shown) > w - 1:
                    shown = shown[1:]  # a long answer scrolls: its end and the cursor stay in view
                _put(scr, h - 1, 0, (label + shown).ljust(w - 1), w)
                # in cells, as the terminal counts them: a wide character (世) takes two
                scr.move(h - 1, min(display_width(label + shown), w - 1))
                scr.refresh()
                key = scr.get_wch()
                if key in ("\n", "\r", curses.KEY_ENTER):
                    return text
                if key == "\x1b":
                    return None
                if key in (curses.KEY_BACKSPACE, "\x7f", "\b"):
                    text = text[:-1]
                elif isinstance(key, str) and key.isprintable():
                    text += key
        finally:
            with contextlib.suppress(curses.error):
                curses.curs_set(0)

    def handle(self, scr, key) -> bool:
        """Act on one key; False to leave the player."""
        n = len(self.s)
        if key == curses.KEY_RESIZE:
            return True  # redrawn at the new size; a message or the help stays
        self.message = ""
        self.help = False
        if key in ("q", "\x1b"):
            return False
        if key == " ":
            self.playing = not self.playing
            if self.playing and self.t >= n - 1:
                self.t = 0
        elif key in ("+", "="):
            self.speed = min(self.speed + 1, len(SPEEDS) - 1)
        elif key in ("-", "_"):
            self.speed = max(self.speed - 1, 0)
        elif key in (".", curses.KEY_RIGHT):
            self.playing = False
            self.goto(self.t + 1)
        elif key in (",", curses.KEY_LEFT):
            self.playing = False
            self.goto(self.t - 1)
        elif key in ("]", curses.KEY_NPAGE):
            self.goto(self.t + 100)
        elif key in ("[", curses.KEY_PPAGE):
            self.goto(self.t - 100)
        elif key in ("}", "c"):
            self.next_commit(1)
        elif key in ("{", "C"):
            self.next_commit(-1)
        elif key in (curses.KEY_HOME, "^"):
            self.goto(0)
        elif key in (curses.KEY_END, "$"):
            self.goto(n - 1)
        elif key == "g":
            text = self.prompt(scr, "go to frame (N or N%): ")
            if text:
                self.goto_text(text)
        elif key == "/":
            text = self.prompt(scr, "search: ")
            if text:
                self.query = text
                self.search(scr, self.t)
        elif key == "n":
            self.search(scr, self.t + 1)
        elif key == "N":
            self.search(scr, self.t - 1, backward=True)
        elif key in ("h", "j", "k", "l"):
            self.follow = False
            dy, dx = {"h": (0, -8), "l": (0, 8), "k": (-4, 0), "j": (4, 0)}[key]
            self.top += dy
            self.left += dx
        elif key == "f":
            self.follow = True
            self.top = self.left = 0  # then move only as far as the cursor needs
        elif key == "?":
            self.help = True
        return True

    def loop(self, scr) -> None:
        last = time.monotonic()
        carry = 0.0
        while True:
            self.draw(scr)
            # playing: wake at the frame rate (10..100 ms; faster speeds skip frames)
            wait = min(100, max(10, int(1000 / SPEEDS[self.speed])))
            scr.timeout(wait if self.playing else -1)
            try:
                key = scr.get_wch()
            except curses.error:
                key = None
            now = time.monotonic()
            if key is not None:
                if not self.handle(scr, key):
                    return
                last = now
                carry = 0.0
            elif self.playing:
                carry += (now - last) * SPEEDS[self.speed]
                last = now
                step = int(carry)
                carry -= step
                if step:
                    self.goto(self.t + step)
                if self.t >= len(self.s) - 1:
                    self.playing = False


def fit(text: str, width: int) -> str:
    """`text` in at most `width` cells: control and zero-width characters (a commit message's
    `\r`, a tab in a path) in the editor's visible notation, wide characters counted as two, so
    curses never moves the cursor or wraps onto the next row."""
    if text.isascii() and text.isprintable():
        return text[: max(width, 0)]
    out, used = [], 0
    for char in text:
        cells, n = glyph(char)
        if used + n > width:
            break
        out.append(cells)
        used += n
    return "".join(out)


def _put(scr, y: int, x: int, text: str, limit: int, attr: int = 0) -> None:
    """Write text at (y, x) clipped to column `limit` (curses raises on the last cell)."""
    text = fit(text, limit - x)
    if not UNICODE[0]:
        text = text.encode("ascii", "replace").decode()
    if not text:
        return
    # writing the bottom-right cell moves the cursor off the screen: curses raises, text shown
    with contextlib.suppress(curses.error):
        scr.addstr(y, x, text, attr)


def pick_session(scr, data: str, sessions) -> str | None:
    index = 0
    scr.timeout(-1)
    while True:
        h, w = scr.getmaxyx()
        if h < MIN_H or w < MIN_W:
            raise GhframesError(
                f"the terminal is {w}x{h}; the viewer needs at least {MIN_W}x{MIN_H}"
            )
        scr.erase()
        _put(
            scr,
            0,
            0,
            f"{len(sessions)} sessions in {data} - Enter plays, q quits",
            w,
            curses.A_BOLD,
        )
        _put(scr, 1, 0, f"  {'session':<48} {'repository':<28} {'commits':>8} {'frames':>10}", w)
        visible = h - 3
        first = min(max(index - visible // 2, 0), max(len(sessions) - visible, 0))
        for row, s in enumerate(sessions[first : first + visible]):
            i = first + row
            text = f"  {s.id:<48} {s.repo:<28} {s.num_commits:>8} {s.num_frames:>10}"
            _put(scr, 2 + row, 0, text.ljust(w), w, curses.A_REVERSE if i == index else 0)
        scr.refresh()
        key = scr.get_wch()
        if key in ("q", "\x1b"):
            return None
        if key in (curses.KEY_DOWN, "j"):
            index = min(index + 1, len(sessions) - 1)
        elif key in (curses.KEY_UP, "k"):
            index = max(index - 1, 0)
        elif key in ("\n", "\r", curses.KEY_ENTER):
            return sessions[index].id


def _main(scr, args) -> None:
    with contextlib.suppress(curses.error):
        curses.curs_set(0)
    scr.keypad(True)
    if args.session:
        session = args.lazy_session
        if not 0 <= args.frame < len(session):
            raise GhframesError(
                f"session {session.id}: frame {args.frame} is out of range (0..{len(session) - 1})"
            )
        Player(session, args.frame, CursesStyles()).loop(scr)
        return
    sessions = list_sessions(args.data)
    if not sessions:
        raise GhframesError(f"{args.data}: no sessions")
    styles = CursesStyles()
    while True:
        chosen = pick_session(scr, args.data, sessions)
        if chosen is None:
            return
        Player(open_lazy(args.data, chosen), 0, styles).loop(scr)


def run(args, env) -> int:
    if args.session:  # fail on a bad session id or frame before touching the terminal
        args.lazy_session = open_lazy(args.data, args.session)
        n = len(args.lazy_session)
        if not 0 <= args.frame < n:
            raise GhframesError(
                f"session {args.session}: frame {args.frame} is out of range (0..{n - 1})"
            )
    else:
        list_sessions(args.data)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise GhframesError("view needs a terminal (stdin and stdout); try `ghframes export`")
    locale.setlocale(locale.LC_ALL, "")
    UNICODE[0] = "utf" in locale.getpreferredencoding(False).lower()
    os.environ.setdefault("ESCDELAY", "25")
    curses.wrapper(_main, args)  # restores the terminal on return, exceptions and Ctrl-C
    return 0
