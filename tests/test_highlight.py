"""Syntax highlighting and the editor's colours: the lexer a file gets, the line-driven lexer
against Pygments' own, the theme on the screen, incremental redraws against a fresh highlighter
(every key), what a key costs, monochrome, and golden colour screens."""

from __future__ import annotations

import os
import pathlib
import random
import re

import pyte.graphics
import pytest
from pygments.lexer import RegexLexer
from pygments.lexers import (
    BashLexer,
    CLexer,
    CssLexer,
    GoLexer,
    HtmlLexer,
    JavaLexer,
    JavascriptLexer,
    MarkdownLexer,
    PythonLexer,
    RubyLexer,
    RustLexer,
    TerraformLexer,
)
from pygments.token import Comment
from test_editor import screen_colours
from test_editor_keys import MOVES, Drawn, walk_keys

from ghframes.render import highlight
from ghframes.render.editor import Editor
from ghframes.render.editor_view import MESSAGE_ROW, STATUS_ROW, TEXT_ROWS, TEXT_TOP, TITLE_ROW
from ghframes.render.highlight import LONG_LINE, Highlighter, lexer_for
from ghframes.render.lexing import ROOT, Replay, lex_line, styles_of, tables_for
from ghframes.render.terminal import COLS, Terminal
from ghframes.render.theme import BOLD, ITALIC, PLAIN, REVERSE, STYLES, THEME, sgr, style_char

GOLDEN = pathlib.Path(__file__).parent / "golden"
ROOT_DIR = pathlib.Path(__file__).parent.parent
DEFAULT = (0, 0, 0)
STRING, COMMENT, KEYWORD, TYPE = (186, 0, 0), (245, 0, ITALIC), (204, 0, BOLD), (81, 0, 0)


def colour(theme_entry: tuple[int, int]) -> tuple[int, int, int]:
    fg, attrs = theme_entry
    return fg, 0, attrs


# ------------------------------------------------------------------------- choosing a lexer


@pytest.mark.parametrize(
    ("path", "sample", "lexer"),
    [
        ("src/app.py", "", "PythonLexer"),
        ("x.h", "#include <stdio.h>\nint f(void);\n", "CLexer"),
        ("x.hpp", "", "CppLexer"),
        ("Makefile", "all:\n\techo hi\n", "MakefileLexer"),
        ("run", "#!/bin/sh\necho hi\n", "BashLexer"),
        ("tool", "#!/usr/bin/env python3\nprint(1)\n", "PythonLexer"),
        ("data", "# vim: set ft=python:\nx = 1\n", "PythonLexer"),
        # Python's analyse_text says 1.0 for any text with "import " in it: without a shebang
        # or modeline, a guess is not taken.
        ("notes", "import os\nfrom x import y\n", None),
        ("README", "Hello, world.\n", None),
        ("notes.txt", "def f(): pass\n", None),  # the name says: plain text
        ("LICENSE", "MIT License\n\nCopyright (c)\n", None),
    ],
)
def test_the_lexer_comes_from_the_name_then_from_a_shebang_or_modeline(path, sample, lexer):
    chosen = lexer_for(path, sample)
    assert (None if chosen is None else type(chosen).__name__) == lexer


# ----------------------------------------------------------- the line-driven lexer, exactly

SAMPLES = {
    CLexer: (
        "#include <stdio.h>\n/* a comment\n   over lines */\nstatic int x = 0x1f; // one\n"
        'size_t f(const char *s) {\n  if (s) return sizeof(s) * 2;\n  return "a\\tb"[0];\n}\n'
        "#define MAX(a, b) ((a) > (b) ? (a) : (b))\n"
    ),
    JavascriptLexer: (
        "/** doc\n * more */\nconst re = /ab+c/g; let s = `t ${x} u`;\n"
        "class A extends B { get x() { return 1.5e3 } }\n// end\n"
    ),
    GoLexer: 'package main\n/* x\ny */\nfunc main() { s := "q"; fmt.Println(s, 3) }\n',
    RustLexer: "/* a /* nested */ b */\nfn main() -> i32 { let r = r#\"x\"#; 'a'; 0 }\n",
    JavaLexer: '/* c\n */ @Override public void f(int[] a) { String s = "x"; }\n',
    CssLexer: "a:hover { color: #fff; /* c\n d */ margin: 0 auto !important; }\n",
    HtmlLexer: '<!-- c\n d --><p class="x">a &amp; b<script>var x = 1;</script></p>\n',
    BashLexer: 'for f in *.py; do\n  echo "$f ${x:-1}" # c\ndone\ncat <<EOF\nq\nEOF\n',
    MarkdownLexer: "# Title\n\nSome *emph* and `code`.\n\n```python\nx = 1\n```\n- item\n",
}
SAMPLES[PythonLexer] = "".join(
    (ROOT_DIR / "ghframes/render" / name).read_text()
    for name in ("editor.py", "cells.py", "editor_view.py")
)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda cls: cls.__name__)
def test_the_driver_gives_pygments_tokens(cls):
    """Lexing a whole text with the compiled tables (alternations by first character, regions)
    gives exactly the tokens of RegexLexer's own loop, refined by the lexer's own override."""
    lexer = cls()
    text = SAMPLES[cls]
    tokens, _ = lex_line(tables_for(cls), lexer, text, ROOT)
    if cls.get_tokens_unprocessed is not RegexLexer.get_tokens_unprocessed:
        replay = Replay()
        refiner = cls()
        refiner._tokens = replay
        replay.tokens = tokens
        tokens = list(refiner.get_tokens_unprocessed(text))
    want = [t for t in lexer.get_tokens_unprocessed(text) if t[2]]
    assert [t for t in tokens if t[2]] == want


def line_styles(cls, text: str) -> list[str]:
    hl = Highlighter(cls())
    lines = text.split("\n")
    return [hl.styles(lines, n) for n in range(len(lines))]


def whole_text_styles(cls, text: str) -> list[str]:
    styles = styles_of(cls().get_tokens_unprocessed(text), len(text))
    out, at = [], 0
    for line in text.split("\n"):
        out.append(styles[at : at + len(line)])
        at += len(line) + 1
    return out


@pytest.mark.parametrize(
    "cls", [CLexer, JavascriptLexer, GoLexer, JavaLexer, CssLexer, PythonLexer, RustLexer]
)
def test_lines_lexed_one_by_one_are_coloured_as_the_whole_text(cls):
    """Line by line, the state carried across, regions for `/* ... */`, these texts get the
    colours Pygments gives them lexing the whole text at once."""
    text = SAMPLES[cls]
    assert line_styles(cls, text) == whole_text_styles(cls, text)


RUBY = r"""class Parser < Base
  include Comparable
  ATTRS = %w[name size].freeze # constants
  def parse(text, limit: 10)
    @count = text.scan(/\w+/).size
    puts "parsed #{@count} words" if @count > limit
    yield :done unless block_given?.nil?
  end
end
"""
TERRAFORM = 'resource "aws_instance" "web" {\n  ami   = "ami-123" # pinned\n  count = 2\n}\n'


@pytest.mark.parametrize(
    ("cls", "text"), [(RubyLexer, RUBY * 20), (TerraformLexer, TERRAFORM * 20)]
)
def test_extended_regex_lexers_are_lexed_a_line_at_a_time_in_their_own_loop(cls, text):
    """Ruby and Terraform (ExtendedRegexLexers) are driven line by line through Pygments' own
    loop, with their context carried across lines, not lexed whole again at every key: the
    colours are those of the whole text."""
    assert Highlighter(cls()).mode == "lines"
    assert line_styles(cls, text) == whole_text_styles(cls, text)


def test_an_unclosed_comment_runs_to_the_end_and_closing_it_ends_it_there():
    c = style_char(colour(THEME[Comment]))
    styles = line_styles(CLexer, "int a;\n/* open\nint b;\nint c;")
    assert styles[0][0] != c and all(set(s) == {c} for s in styles[1:])
    styles = line_styles(CLexer, "int a;\n/* open\nint b; */ int c;")
    assert styles[2] == c * len("int b; */") + PLAIN + styles[0]  # " int c;" as "int a;" is


# ----------------------------------------------------------------------------- the theme


def test_theme_colours_read_back_from_pyte_as_themselves():
    """Each palette index the theme uses is the lowest one with its RGB in pyte's table, so a
    frame holds the theme's own numbers (the colour contract's reading)."""
    table = pyte.graphics.FG_BG_256
    for fg, attrs in THEME.values():
        assert 0 <= fg <= 255 and attrs in (0, BOLD, ITALIC)
        if fg:
            assert table.index(table[fg], 1) == fg


def test_sgr_sequences_use_only_the_contracts_codes():
    allowed = {0, 1, 3, 4, 7, 22, 23, 24, 27, 39, 49, *range(30, 38), *range(90, 98)}
    chars = [style_char(style) for style in STYLES]
    for old in [None, *chars]:
        for new in chars:
            seq = sgr(old, new)
            assert re.fullmatch(r"\x1b\[[0-9;]*m", seq), seq
            params = [int(p) for p in seq[2:-1].split(";") if p]
            while params:
                p = params.pop(0)
                if p in (38, 48):
                    assert params[0] == 5 and 1 <= params[1] <= 255
                    del params[:2]
                else:
                    assert p in allowed, seq


# --------------------------------------------------------------------- the editor's screen

PY = '''import os


class Stack:
    """A stack."""

    @property
    def size(self) -> int:
        return len(self.items) + 0x1F  # items
'''


def test_a_python_screen_in_colour_and_the_bars():
    d = Drawn(PY, "pkg/stack.py")
    colours = screen_colours(d.terminal)
    rows = d.terminal.display()
    assert rows[TITLE_ROW].startswith("  ghedit ") and "pkg/stack.py" in rows[TITLE_ROW]
    centre = rows[TITLE_ROW].index("pkg/stack.py") + len("pkg/stack.py") // 2
    assert abs(centre - COLS // 2) <= 1
    assert all(c == (0, 0, REVERSE) for c in colours[TITLE_ROW] + colours[STATUS_ROW])
    assert set(colours[MESSAGE_ROW][: len("[ Read 10 lines ]")]) == {(0, 0, REVERSE)}
    first = TEXT_TOP
    assert colours[first][:6] == [KEYWORD] * 6  # import
    assert colours[first + 3][:5] == [KEYWORD] * 5  # class
    assert colours[first + 3][6:11] == [(149, 0, BOLD)] * 5  # Stack
    assert colours[first + 4][4:17] == [STRING] * 13  # the docstring
    assert colours[first + 6][4:13] == [(179, 0, 0)] * 9  # @property
    line = rows[first + 8]
    assert colours[first + 8][line.index("0x1F")] == (141, 0, 0)
    assert colours[first + 8][line.index("#")] == COMMENT
    assert colours[first + 8][line.index("len")] == TYPE  # a builtin
    d.press("x")
    assert d.terminal.display()[TITLE_ROW].rstrip().endswith("Modified")
    d.press("<C-s>")
    assert "Modified" not in d.terminal.display()[TITLE_ROW]


def test_prompt_labels_are_bold_and_a_long_name_shows_its_end():
    d = Drawn("x", "a/" + "long_folder_name/" * 12 + "end.py").press("<C-f>", "q")
    row = screen_colours(d.terminal)[MESSAGE_ROW]
    assert row[: len("Search: ")] == [(0, 0, BOLD)] * 8 and row[8] == DEFAULT
    title = d.terminal.display()[TITLE_ROW]
    assert "<" in title and title.rstrip().endswith("end.py")


def test_file_content_is_drawn_never_interpreted_in_colour():
    d = Drawn('x = "\x1b[31mred\x07"\n\x1b[2J\x9b1m# \x1b]0;t\x07\n', "evil.py")
    rows = d.terminal.display()
    assert rows[TEXT_TOP].startswith('x = "^[[31mred^G"')
    assert rows[TEXT_TOP + 1].startswith("^[[2J<9b>1m# ^[]0;t^G")
    colours = screen_colours(d.terminal)
    assert set(colours[TEXT_TOP][4 : len('x = "^[[31mred^G"')]) == {STRING}
    assert d.terminal.unknown_sequences == 0


def test_a_long_line_is_drawn_plain_and_passes_the_state_on():
    text = 'x = """\n' + "y" * (LONG_LINE + 1) + '\n"""\nz = 1'
    d = Drawn(text, "long.py")
    colours = screen_colours(d.terminal)
    assert set(colours[TEXT_TOP + 1]) == {DEFAULT}
    assert colours[TEXT_TOP + 2][:3] == [STRING] * 3  # still inside the string
    assert colours[TEXT_TOP + 3][2] == (203, 0, 0)  # `=` after it closed


def test_c_standard_type_names_are_types():
    colours = screen_colours(Drawn("size_t n; int m; FILE *f;", "x.c").terminal)[TEXT_TOP]
    assert colours[0:6] == [TYPE] * 6 and colours[10:13] == [TYPE] * 3
    assert colours[17:21] == [TYPE] * 4


# -------------------------------------------------------------------------- incrementally


def written(out: list[str]) -> str:
    """The characters an output writes to the screen (escape sequences dropped)."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(out))


def test_a_typed_character_rewrites_only_the_cells_it_changed():
    d = Drawn("def f():\n    retur\n    x = 1", "f.py").press("<Down>", "<End>", "x", "<BS>")
    d.editor.press("n")  # `retur` becomes the keyword `return`: its cells are recoloured
    text = written(d.out)
    d.flush("n")
    assert "return" in text and len(text) <= len("return") + 2  # and the ruler's digits
    for key in " x":
        d.editor.press(key)
        text = written(d.out)
        d.flush(key)
        assert key in text and len(text) <= 1 + 2


def test_opening_a_string_at_the_top_of_a_long_file_costs_the_lines_on_screen(monkeypatch):
    """The editor's own lexing (the oracle's fresh highlighter not counted): a key lexes its
    line, and the lines below only while their state at the start changes, only on screen."""
    lexed = []

    def counting(tables, lexer, text, stack):
        lexed.append(text)
        return lex_line(tables, lexer, text, stack)

    def press(*keys: str) -> int:
        lexed.clear()
        for key in keys:
            monkeypatch.setattr(highlight, "lex_line", counting)
            d.editor.press(key)
            monkeypatch.setattr(highlight, "lex_line", lex_line)
            d.flush(key)
        return len(lexed)

    text = "".join(f"x{i} = f({i})  # {i}\n" for i in range(1000))
    d = Drawn(text, "big.py")
    text_rows = slice(TEXT_TOP, TEXT_TOP + TEXT_ROWS)
    before = screen_colours(d.terminal)[text_rows]
    assert press("x") == 1 and press("<BS>") <= 1  # a plain line: that line, once
    assert press('"', '"') == 2  # `""`: a closed string, the lines below as they were
    assert press('"') == TEXT_ROWS  # `"""`: every other line on screen turns into the string
    assert set(screen_colours(d.terminal)[TEXT_TOP + 5][:10]) == {STRING}
    assert press("<PgDn>") <= TEXT_ROWS  # lines further down are lexed as they come into view
    assert press("<PgUp>", "<BS>", "<BS>", "<BS>") <= 3  # the lines below from the cache
    assert screen_colours(d.terminal)[text_rows] == before


RICH = list("ab_ (:.#/*\"'{}\\") + ['"""', "/*", "*/", "//", "<Enter>", "<BS>", "<Tab>"]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("w.py", PY * 3),
        ("w.c", SAMPLES[CLexer] * 3),
        ("w.js", SAMPLES[JavascriptLexer] * 3),
        ("w.json", '{"a": [1, 2.5, "x"],\n "b": {"c": null, "d": true}}\n' * 20),
        ("w.yaml", "a: 1\nb:\n  - x\n  - 'y'\nc: |\n  text\n# end\n" * 10),
        ("w.rb", RUBY * 3),
    ],
)
def test_random_edits_of_strings_and_comments_match_a_fresh_highlighter(path, text):
    """Every key, the screen's characters and colours equal the model drawn from scratch with
    a fresh highlighter (`Drawn` checks), while quotes, comment marks and line breaks open and
    close strings and comments all over the file."""
    rng = random.Random(path)
    d = Drawn(text, path)
    for step in range(500):
        r = rng.random()
        key = rng.choice(MOVES + ["<PgDn>", "<PgUp>"]) if r < 0.3 else rng.choice(RICH)
        for k in [key] if len(key) == 1 or key.startswith("<") else list(key):
            d.press(k)
        assert d.terminal.unknown_sequences == 0, step


def test_monochrome_draws_the_same_characters_without_any_sgr():
    rng = random.Random(3)
    colour, mono = Drawn(PY * 4, "m.py"), Drawn(PY * 4, "m.py", color=False)
    for _ in range(400):
        ed = colour.editor
        if ed.prompt is None and not ed.quoting and rng.random() < 0.4:
            keys = [rng.choice(RICH)]
        else:
            keys = walk_keys(rng, ed)
        key = keys[0]
        for d in (colour, mono):
            out = ""
            for k in [key] if len(key) == 1 or key.startswith("<") else list(key):
                d.editor.press(k)
                out += "".join(d.out)
                d.flush(k)
        assert not re.search(r"\x1b\[[0-9;]*m", out)
        assert mono.terminal.display() == colour.terminal.display()
        assert {c for row in screen_colours(mono.terminal) for c in row} == {DEFAULT}
    assert len({c for row in screen_colours(colour.terminal) for c in row}) > 3


def test_the_model_alone_never_lexes(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("lexed")

    monkeypatch.setattr(highlight, "lexer_for", refuse)
    monkeypatch.setattr(highlight, "lex_line", refuse)
    editor = Editor(PY)
    for key in ["<Down>", "x", "<Enter>", "<C-s>"]:
        editor.press(key)
    out: list[str] = []
    editor = Editor(PY, "m.py", out, color=False)
    editor.open()
    editor.press("y")


# --------------------------------------------------------------------------- golden colours


def colour_dump(terminal: Terminal) -> str:
    """Each row's text and its colour runs: `start-end fg/bg/attrs` where not default."""
    lines = []
    for y, (text, row) in enumerate(zip(terminal.display(), screen_colours(terminal), strict=True)):
        runs, x = [], 0
        while x < COLS:
            end = x
            while end < COLS and row[end] == row[x]:
                end += 1
            if row[x] != DEFAULT:
                runs.append(f"{x}-{end - 1} {'/'.join(map(str, row[x]))}")
            x = end
        lines.append(f"{y:2} {text.rstrip()}")
        if runs:
            lines.append("   " + ", ".join(runs))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("name", "path"), [("python", "stack.py"), ("c", "main.c")])
def test_golden_colour_screens(name, path):
    text = PY if name == "python" else SAMPLES[CLexer]
    d = Drawn(text, path).press("<Down>", "<End>", "<Enter>", *"# new", "<Enter>", *'"""')
    dump = colour_dump(d.terminal)
    golden = GOLDEN / f"editor_colours_{name}.txt"
    if os.environ.get("GHFRAMES_UPDATE_GOLDEN") == "1":
        golden.write_text(dump)
    elif not golden.exists():
        pytest.fail(f"{golden}: golden screen missing; write it with GHFRAMES_UPDATE_GOLDEN=1")
    assert dump == golden.read_text(), f"{golden}: colours differ (GHFRAMES_UPDATE_GOLDEN=1)"
