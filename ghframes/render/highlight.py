"""Syntax highlighting for the editor: the lexer a file gets, and every line's styles, kept up to
date line by line as the text changes.

Which lexer (`lexer_for`): the one Pygments names for the file name
(`get_lexer_for_filename`, its candidates told apart by the first `SAMPLE_CHARS` characters);
when the name says nothing, `guess_lexer` on those characters, accepted only for a text that
starts with `#!` or carries a vim/emacs modeline and only when the winner is certain (1.0):
measured on 1,500 extension-less files of a Debian system, the 323 scripts with a shebang were
guessed right 319 times (6 ms each, median; 35 ms at the 99th percentile), while without one the
winners were wrong nearly always (GDScript, Carbon, Transact-SQL for README-like text), whatever
their score. Otherwise, and for plain text, nothing is highlighted.

How a line is lexed. A `RegexLexer` is driven one line at a time through its own `_tokens`
tables (lexing.py), its state stack carried from each line's end to the next line's start: a
line's styles are a function of its text and the stack at its start. A changed line is re-lexed
from its stored start state, and the lines after it only while the state at their start comes
out different from before (a triple quote opened at the top of a file recolours every line it
reaches on screen; closing it brings the old states back, and their lines' styles from the
cache). Only lines up to the last one on screen are lexed; above the view a line costs its
lexing once and one stored state. Each line is matched alone (its text and a `\\n`): `^`, `\\A` and
look-behinds see its start as the text's start. Measured against Pygments lexing whole files,
the colours are the same but for constructs Pygments matches with one regex over several lines
inside a callback (a Python docstring's escapes show as escapes). A lexer that overrides
`get_tokens_unprocessed` to refine RegexLexer's tokens (C's standard type names, PHP's
builtins) refines each line's tokens the same way (lexing.Replay).

ExtendedRegexLexers that lex in a plain LexerContext (Ruby, Terraform, Sass, Haml, Crystal,
Perl 6, ...) are driven the same way through Pygments' own loop, their context carried from
line to line (lexing.ContextLines): Ruby lexed whole costs 5.8 ms per KiB, so a key in a 7 KiB
file would cost 43 ms. What that loses: a Ruby heredoc's body, which the lexer finds by reading
ahead in the text, is coloured as code. The other lexers (JSON, YAML, Makefile; see
`_context_of` for YAML) lex the whole text again whenever it changed (cached by the text): per
key about 0.25 ms per KiB for JSON, 0.5 for YAML, 1.5 for Makefiles; a text over
`WHOLE_TEXT_CHARS` is drawn plain. Lines longer than `LONG_LINE` characters are drawn plain and
pass the state at their start on unchanged.
"""

from __future__ import annotations

import functools

from pygments.lexer import ExtendedRegexLexer, Lexer, LexerContext, RegexLexer
from pygments.lexers import get_lexer_for_filename, guess_lexer
from pygments.lexers.special import TextLexer
from pygments.modeline import get_filetype_from_buffer
from pygments.util import ClassNotFound

from ghframes.render.lexing import (
    ROOT,
    ContextLines,
    Replay,
    State,
    lex_line,
    styles_of,
    tables_for,
)
from ghframes.render.theme import PLAIN

SAMPLE_CHARS = 4096  # what the lexer choice reads of a file
LONG_LINE = 1000  # characters; a longer line is drawn plain
WHOLE_TEXT_CHARS = 16 * 1024  # the most a lexer that is not line-driven lexes per change


def _context_of(lexer: Lexer | None) -> type[LexerContext] | None:
    """LexerContext for an ExtendedRegexLexer that lexes in one (ContextLines drives it a line
    at a time); None for others. YAML makes a context of its own, and decides on the line after
    a block scalar's `|` or `>` what that line is: lexed a line at a time, 29 of the 303 lines
    of PyYAML's example file came out coloured otherwise, so YAML lexes the whole text."""
    if not isinstance(lexer, ExtendedRegexLexer):
        return None
    own = type(lexer).get_tokens_unprocessed is not ExtendedRegexLexer.get_tokens_unprocessed
    return None if own else LexerContext


@functools.lru_cache(maxsize=256)
def lexer_for(path: str, sample: str) -> Lexer | None:
    """The lexer for a file named `path` whose text starts with `sample`; None: plain text."""
    try:
        lexer = get_lexer_for_filename(path, code=sample)
    except ClassNotFound:
        lexer = None
        if sample.startswith("#!") or get_filetype_from_buffer(sample):
            try:
                guess = guess_lexer(sample)
            except ClassNotFound:
                guess = None
            modeline = get_filetype_from_buffer(sample) is not None
            if guess is not None and (modeline or type(guess).analyse_text(sample) >= 1.0):
                lexer = guess
    if lexer is None or isinstance(lexer, TextLexer):
        return None
    return lexer


def plain(n: int) -> str:
    """The styles of `n` characters drawn in the default style."""
    return PLAIN * n


# ------------------------------------------------------------------------------ the buffer


class Highlighter:
    """The styles of a buffer's lines (one style character per character), computed lazily.

    The editor tells it where the text changed (`edited`, `inserted`, `deleted`), then calls
    `settle` with the last line it shows, which returns the lines whose styles may have changed
    besides the edited ones. In line mode `_start[n]` is the state at the start of line n
    (`_start[0]` the root): all of them are right after `settle`; between an edit and it, those
    from `_valid` on are the states of the text before the edit, lines shifted as it moved
    them (the chain `_walk` compares with, to stop where the new states come out the same).
    """

    @classmethod
    def for_file(cls, path: str, lines: list[str]) -> Highlighter:
        """The highlighter for a file named `path` holding `lines` (its lexer chosen once, from
        the name and the first `SAMPLE_CHARS` characters)."""
        sample, size = [], 0
        for line in lines:
            sample.append(line)
            size += len(line) + 1
            if size >= SAMPLE_CHARS:
                break
        return cls(lexer_for(path, "\n".join(sample)[:SAMPLE_CHARS]))

    def __init__(self, lexer: Lexer | None) -> None:
        self.lexer = lexer
        self.mode = "plain" if lexer is None else "whole"
        self._replay: Replay | None = None
        context = _context_of(lexer)
        if context is not None:
            self.mode = "lines"
            self._line = ContextLines(lexer, context)
        elif isinstance(lexer, RegexLexer) and not isinstance(lexer, ExtendedRegexLexer):
            self.mode = "lines"
            self._tables = tables_for(type(lexer))
            self._line = self._regex_line
            if type(lexer).get_tokens_unprocessed is not RegexLexer.get_tokens_unprocessed:
                # A second instance, whose loop replays our tokens through its refinement;
                # callbacks (`using(this)`) go on lexing with the first.
                self._replay = Replay()
                self._refiner = type(lexer)(**lexer.options)
                self._refiner._tokens = self._replay
        self._cache: dict[tuple[str, State], tuple[str, State]] = {}
        self._states: dict[State, State] = {ROOT: ROOT}  # one tuple per distinct state
        self._start: list[State] = [ROOT]
        self._valid = 1  # _start[:_valid] are right for the text as it is
        self._edited = -1  # the last line whose text changed since `settle`
        self._lo, self._hi = 1 << 62, 0  # lines whose start state changed since `settle`
        self._text: str | None = None  # whole mode: the text lexed, and its lines' styles
        self._whole: list[str] = []

    # -- the editor's changes

    def edited(self, n: int) -> None:
        """Line n's text changed in place."""
        self._edited = max(self._edited, n)
        self._valid = min(self._valid, n + 1, len(self._start))

    def inserted(self, n: int) -> None:
        """Line n is new (the lines from n on moved down); line n - 1 may have changed."""
        if n < len(self._start):
            self._start.insert(n, ROOT)  # a placeholder until `_walk` computes it
        self._edited = max(self._edited + (self._edited >= n), n)
        self._valid = max(1, min(self._valid, n, len(self._start)))

    def deleted(self, n: int) -> None:
        """Line n is gone (the lines after it moved up); line n - 1 may have changed."""
        start = self._start
        if n < len(start):
            del start[n]
            if not start:
                start.append(ROOT)
            start[0] = ROOT
        self._edited = max(self._edited - (self._edited > n), n - 1)
        self._valid = max(1, min(self._valid, n, len(start)))

    # -- styles

    def styles(self, lines: list[str], n: int) -> str:
        """The style characters of line n of `lines`."""
        if self.mode == "lines":
            if n >= self._valid:
                self._walk(lines, n)
            return self._lex(lines[n], self._start[n])[0]
        if self.mode == "whole":
            self._lex_whole(lines)
            return self._whole[n]
        return PLAIN * len(lines[n])

    def styles_of(self, line: str, n: int) -> str | None:
        """The styles `line` has as line n, from the state at line n's start (line mode,
        `_start[n]` right; else None)."""
        if self.mode != "lines" or n >= self._valid:
            return None
        return self._lex(line, self._start[n])[0]

    def settle(self, lines: list[str], last: int) -> tuple[int, int]:
        """After a change: bring the lines up to `last` up to date; return the range of lines
        [lo, hi) whose styles may have changed besides the edited lines themselves."""
        if self.mode == "whole":
            self._lex_whole(lines)
            return 0, len(lines)
        if self.mode != "lines":
            return 0, 0
        self._walk(lines, min(last, len(lines) - 1))
        if self._valid < len(self._start):  # not converged within the view: drop the rest
            del self._start[self._valid :]
        lo, hi = self._lo, self._hi
        self._lo, self._hi, self._edited = 1 << 62, 0, -1
        return lo, hi

    def _walk(self, lines: list[str], n: int) -> None:
        """Make `_start[: n + 1]` right, from `_valid` on; stop early at a line past the edits
        whose start state comes out as it was: the entries after it are then right too."""
        start, states = self._start, self._states
        m = self._valid
        while m <= n:
            end = self._lex(lines[m - 1], start[m - 1])[1]
            end = states.setdefault(end, end)
            if m < len(start):
                if m > self._edited and start[m] == end:
                    m = self._valid = len(start)
                    continue
                start[m] = end
            else:
                start.append(end)
            self._lo = min(self._lo, m)
            self._hi = max(self._hi, m + 1)
            m += 1
            self._valid = m

    def _regex_line(self, text: str, state: State) -> tuple[list, State]:
        return lex_line(self._tables, self.lexer, text, state)

    def _lex(self, line: str, state: State) -> tuple[str, State]:
        """(styles, end state) of one line lexed from `state`."""
        key = (line, state)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if len(line) > LONG_LINE:
            result = (PLAIN * len(line), state)
        else:
            cr = line.endswith("\r")
            text = (line[:-1] if cr else line) + "\n"
            tokens, end = self._line(text, state)
            if self._replay is not None:
                self._replay.tokens = tokens
                refined = list(self._refiner.get_tokens_unprocessed(text))
                if "".join(t[2] for t in refined) == text:
                    tokens = refined
            result = (styles_of(tokens, len(text) - 1) + (PLAIN if cr else ""), end)
        if len(self._cache) > 4 * len(self._start) + 4096:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _lex_whole(self, lines: list[str]) -> None:
        """Lex the whole text again if it changed since the last time."""
        stripped = [line[:-1] if line.endswith("\r") else line for line in lines]
        text = "\n".join(stripped) + "\n"
        if text == self._text:
            return
        self._text = text
        if len(text) > WHOLE_TEXT_CHARS:
            self._whole = [PLAIN * len(line) for line in lines]
            return
        styles = styles_of(self.lexer.get_tokens_unprocessed(text), len(text))
        out, at = [], 0
        for line, bare in zip(lines, stripped, strict=True):
            out.append(styles[at : at + len(bare)] + PLAIN * (len(line) - len(bare)))
            at += len(bare) + 1
        self._whole = out
