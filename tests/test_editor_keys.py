"""The editor's nano keys: autoindent, word moves and deletes, search.

Every key here is also drawn into the real pyte terminal and the screen compared with the
model's oracle (`expected_rows`/`expected_cursor`), including a seeded random walk. How the
planner uses autoindent is tested in test_editor.py.
"""

from __future__ import annotations

import random

import pytest
from test_editor import assert_screen

from ghframes.render.cells import is_typable
from ghframes.render.editor import SEARCH_LABEL, Editor, EditorError
from ghframes.render.editor_view import TEXT_ROWS, TEXT_TOP
from ghframes.render.terminal import COLS, Terminal
from ghframes.store.actions import CONTROL


class Drawn:
    """An editor drawing into a terminal; every key checks the screen against the model."""

    def __init__(self, text: str, path: str = "f.txt", color: bool = True) -> None:
        self.out: list[str] = []
        self.terminal = Terminal()
        self.editor = Editor(text, path, self.out, color=color)
        self.editor.open()
        self.flush("open")

    def flush(self, where: str) -> None:
        self.terminal.feed("".join(self.out))
        self.out.clear()
        assert_screen(self.terminal, self.editor, where)
        assert self.terminal.unknown_sequences == 0, where

    def press(self, *keys: str) -> Drawn:
        for key in keys:
            self.editor.press(key)
            self.flush(f"after {key!r}")
        return self

    def at(self) -> tuple[int, int]:
        return self.editor.row, self.editor.col

    def message(self) -> str:
        return self.terminal.display()[-1].rstrip()


def drawn(text: str, *keys: str) -> Drawn:
    return Drawn(text).press(*keys)


# ------------------------------------------------------------------------------- autoindent


@pytest.mark.parametrize(
    ("line", "indent"),
    [
        ("    x = 1", "    "),
        ("\t\treturn", "\t\t"),
        (" \t  mixed", " \t  "),
        ("\t    tab then spaces", "\t    "),
        ("no indent", ""),
        ("   ", "   "),  # a line of blanks copies all of them
        ("\r  x", ""),  # CR is no indentation
    ],
)
def test_enter_at_the_end_copies_the_leading_blanks(line, indent):
    d = drawn(line + "\nnext", "<End>", "<Enter>")
    assert d.editor.lines == [line, indent, "next"]
    assert d.at() == (1, len(indent)) and d.editor.goal == len(indent)


def test_enter_splits_and_indents_the_rest_of_the_line():
    d = drawn("    ab(c)", "<End>", "<Left>", "<Left>", "<Left>", "<Enter>")
    assert d.editor.lines == ["    ab", "    (c)"]
    assert d.at() == (1, 4)


def test_enter_inside_the_indentation_copies_only_what_is_before_the_cursor():
    d = drawn("        x", "<Right>", "<Right>", "<Right>", "<Enter>")
    assert d.editor.lines == ["   ", "        x"]
    assert d.at() == (1, 3)
    d = drawn("\t \tx", "<Right>", "<Right>", "<Enter>")
    assert d.editor.lines == ["\t ", "\t \tx"]
    assert d.at() == (1, 2)


def test_enter_at_column_zero_copies_nothing():
    d = drawn("    x\n", "<Enter>")
    assert d.editor.lines == ["", "    x", ""]
    assert d.at() == (1, 0)


def test_enter_in_crlf_lines():
    # At the very end the CR stays on its line; before it, the CR goes to the new line.
    d = drawn("    x\r\n\ty\r\n", "<End>", "<Enter>")
    assert d.editor.lines == ["    x\r", "    ", "\ty\r", ""]
    d.press("<Down>", "<End>", "<Left>", "<Enter>")
    assert d.editor.lines == ["    x\r", "    ", "\ty", "\t\r", ""]
    assert d.at() == (3, 1)
    assert "\n".join(d.editor.lines) == d.editor.text


def test_enter_on_a_line_of_copied_indentation_empties_it_and_moves_the_indentation_down():
    d = drawn("  a", "<End>", "<Enter>", "<Enter>", "b")
    assert d.editor.lines == ["  a", "", "  b"]  # vim's rule: a blank line stays blank
    # any key in between makes the blanks the line's own
    d = drawn("  a", "<End>", "<Enter>", " ", "<BS>", "<Enter>", "b")
    assert d.editor.lines == ["  a", "  ", "  b"]


# ------------------------------------------------------------------------------- word moves

LINE = "foo.bar(baz_qux, 42)"


def test_ctrl_left_walks_word_starts_over_punctuation():
    d = drawn(LINE, "<End>")
    seen = []
    for _ in range(5):
        d.press("<C-Left>")
        seen.append(d.editor.col)
    assert seen == [17, 8, 4, 0, 0]


def test_ctrl_right_walks_to_the_next_word_or_the_end():
    d = drawn(LINE)
    seen = []
    for _ in range(5):
        d.press("<C-Right>")
        seen.append(d.editor.col)
    assert seen == [4, 8, 17, 20, 20]
    assert d.editor.row == 0


@pytest.mark.parametrize(
    ("line", "starts"),
    [
        ("héllo wörld", [6, 0]),
        ("中文 字符", [3, 0]),  # CJK letters are word characters
        ("naïve_café!", [0]),
        ("e\u0301x", [2, 0]),  # a combining mark is not a word character
        ("   ", [0]),
        ("x  --  ", [0]),
        ("Ωmega·42", [6, 0]),  # the middle dot is punctuation
    ],
)
def test_ctrl_left_over_unicode(line, starts):
    d = drawn(line, "<End>")
    seen = []
    for _ in starts:
        d.press("<C-Left>")
        seen.append(d.editor.col)
    assert seen == starts


@pytest.mark.parametrize(
    ("line", "stops"),
    [
        ("héllo wörld", [6, 11]),
        ("中文 字符", [3, 5]),
        ("e\u0301x", [2, 3]),
        ("  lead", [2, 6]),  # blanks first: over no word, then over the blanks
        ("a_b-c", [4, 5]),
    ],
)
def test_ctrl_right_over_unicode(line, stops):
    d = drawn(line)
    seen = []
    for _ in stops:
        d.press("<C-Right>")
        seen.append(d.editor.col)
    assert seen == stops


def test_word_moves_cross_line_boundaries():
    d = drawn("ab cd\n  ef\nlast")
    d.press("<Down>", "<C-Left>")
    assert d.at() == (0, 5)  # column 0 of line 1: end of line 0
    d.press("<C-Right>")
    assert d.at() == (1, 0)  # end of a line: start of the next
    d.press("<C-Right>")
    assert d.at() == (1, 2)  # over no word, then the blanks: the start of `ef`
    d.press("<C-Right>", "<C-Right>")
    assert d.at() == (2, 0)
    d.press("<End>", "<C-Right>")
    assert d.at() == (2, 4)  # the end of the last line stays
    d = drawn("x", "<C-Left>")
    assert d.at() == (0, 0)


def test_word_moves_set_the_goal_column():
    d = drawn("alpha beta gamma\nshort\nalpha beta gamma", "<C-Right>", "<C-Right>")
    assert d.editor.col == 11
    d.press("<Down>", "<Down>")
    assert d.at() == (2, 11)
    d.press("<C-Left>", "<Up>", "<Up>")
    assert d.at() == (0, 6)


def test_word_moves_do_not_modify():
    d = drawn("a b\nc", "<C-Right>", "<C-Right>", "<C-Left>")
    assert not d.editor.modified


# ------------------------------------------------------------------------------- word delete


def test_ctrl_bs_in_the_middle_of_a_word():
    d = drawn("hello world", "<End>", "<Left>", "<Left>", "<Left>", "<C-BS>")
    assert d.editor.lines == ["hello rld"]
    assert d.at() == (0, 6) and d.editor.modified


def test_ctrl_bs_after_punctuation_takes_it_with_the_word():
    d = drawn("foo(bar).", "<End>", "<C-BS>")
    assert d.editor.lines == ["foo("]
    d.press("<C-BS>")
    assert d.editor.lines == [""]


def test_ctrl_bs_over_pure_indentation_is_one_key():
    d = drawn("        \n\t \tx", "<End>", "<C-BS>")
    assert d.editor.lines == ["", "\t \tx"]
    d.press("<Down>", "<Right>", "<Right>", "<Right>", "<C-BS>")
    assert d.editor.lines == ["", "x"] and d.at() == (1, 0)


def test_ctrl_bs_at_column_zero_is_backspace():
    d = drawn("ab\ncd", "<Down>", "<C-BS>")
    assert d.editor.lines == ["abcd"] and d.at() == (0, 2)
    d = drawn("ab\ncd", "<C-BS>")
    assert d.editor.lines == ["ab", "cd"] and d.at() == (0, 0)
    assert not d.editor.modified


def test_ctrl_bs_unicode_and_crlf():
    # The CR is a non-word character: it goes with the word before it.
    d = drawn("x = naïve_über\r\n", "<End>", "<C-BS>")
    assert d.editor.lines == ["x = ", ""]
    d.press("<C-BS>")
    assert d.editor.lines == ["", ""]
    d = drawn("中文 字符", "<End>", "<C-BS>")
    assert d.editor.lines == ["中文 "] and d.at() == (0, 3)


# ------------------------------------------------------------------------------- search

TEXT = "alpha\nbeta alpha\n\tgamma alpha\nend"


def search(d: Drawn, query: str) -> Drawn:
    return d.press("<C-f>", *query, "<Enter>")


def test_search_prompt_is_drawn_as_it_is_typed():
    d = drawn(TEXT, "<C-f>", "a", "l")
    assert d.editor.prompt == "al"
    assert d.message() == "Search: al"
    assert d.terminal.cursor == (47, len("Search: al"))
    d.press("<BS>", "中")
    assert d.message() == "Search: a中"
    assert d.terminal.cursor == (47, len("Search: a") + 2)


def test_search_finds_the_next_occurrence_after_the_cursor():
    d = search(drawn(TEXT), "alpha")
    assert d.at() == (1, 5) and d.editor.goal == 5
    assert d.message() == "" and d.editor.prompt is None
    search(d, "alpha")
    assert d.at() == (2, 7)
    d.press("<Down>")
    assert d.at() == (3, 3)  # the goal column is the occurrence's


def test_search_starts_strictly_after_the_cursor_on_its_line():
    d = search(drawn("ab ab ab"), "ab")
    assert d.at() == (0, 3)
    search(d, "ab")
    assert d.at() == (0, 6)
    search(d, "b a")
    assert d.at() == (0, 1) and d.message() == "[ Search Wrapped ]"


def test_search_wraps_around_from_the_top():
    d = drawn(TEXT, "<Down>", "<Down>", "<Down>")
    search(d, "alpha")
    assert d.at() == (0, 0)
    assert d.message() == "[ Search Wrapped ]"
    d.press("<Right>")
    assert d.message() == ""  # the next key clears the notice


def test_the_only_occurrence_at_the_cursor_is_found_by_wrapping():
    d = drawn("x foo x", "<Right>", "<Right>")
    search(d, "foo")
    assert d.at() == (0, 2) and d.message() == "[ Search Wrapped ]"
    d = drawn("x foo x", "<End>")
    search(d, "foo")
    assert d.at() == (0, 2) and d.message() == "[ Search Wrapped ]"


def test_search_is_exact_and_case_sensitive():
    d = search(drawn("Alpha\nALPHA\nalpha"), "alpha")
    assert d.at() == (2, 0)
    d = search(drawn("abc"), "Abc")
    assert d.at() == (0, 0) and d.message() == '[ "Abc" not found ]'


def test_search_not_found_leaves_the_cursor():
    d = drawn(TEXT, "<Down>", "<End>")
    search(d, "zeta")
    assert d.at() == (1, 10)
    assert d.message() == '[ "zeta" not found ]'
    assert not d.editor.modified


@pytest.mark.parametrize("cancel", ["<C-c>", "<Esc>"])
def test_search_cancel(cancel):
    d = drawn(TEXT, "<C-f>", "b", "e", cancel)
    assert d.editor.prompt is None and d.at() == (0, 0) and d.message() == ""
    d.press("x")  # typing again goes to the text
    assert d.editor.lines[0] == "xalpha"


def test_search_backspace_edits_the_query():
    d = drawn(TEXT, "<C-f>", "<BS>", "g", "a", "x", "<BS>", "m", "<Enter>")
    assert d.at() == (2, 1)
    d = drawn(TEXT, "<C-f>", "q", "<BS>", "<BS>", "<Enter>")  # empty: just closes
    assert d.at() == (0, 0) and d.message() == "" and d.editor.prompt is None


def test_search_query_is_text_not_keys():
    """A query is typed character by character: `<Enter>` typed as six characters is searched
    for literally, and what it finds is drawn as data."""
    d = search(drawn("a\nsay <Enter> x\n"), "<Enter>")
    assert d.at() == (1, 4)
    d = search(drawn("x"), "<script>")
    assert d.message() == '[ "<script>" not found ]'
    d = search(drawn("x"), '"]\\^[')
    assert d.message() == '[ ""]\\^[" not found ]'


@pytest.mark.parametrize(
    "key", ["\x1b", "\t", "\x07", "<Tab>", "<C-v>", "<U+200B>", "<Up>", "<C-f>", "<C-k>", "\u0301"]
)
def test_search_prompt_refuses_other_keys_and_changes_nothing(key):
    d = drawn(TEXT, "<C-f>", "a")
    with pytest.raises(EditorError, match="at the search prompt"):
        d.editor.press(key)
    assert d.editor.prompt == "a" and d.at() == (0, 0)
    d.press("l", "<Enter>")
    assert d.at() == (1, 5)


def test_a_refused_key_keeps_the_notice():
    d = search(drawn(TEXT, "<End>"), "beta")
    assert d.message() == ""
    search(d, "nope")
    with pytest.raises(EditorError):
        d.editor.press("<F13>")
    d.flush("after the refused key")
    assert d.message() == '[ "nope" not found ]'


def test_search_moves_the_view_to_a_far_line_and_column():
    lines = [f"line {i}" for i in range(300)]
    lines[250] = "x" * 400 + "needle"
    d = search(drawn("\n".join(lines)), "needle")
    assert d.at() == (250, 400)
    assert d.editor.top <= 250 < d.editor.top + TEXT_ROWS
    assert d.terminal.display()[TEXT_TOP + 250 - d.editor.top].startswith("<")
    search(d, "line 3")
    assert d.at() == (3, 0) and d.message() == "[ Search Wrapped ]"


def test_a_long_query_stays_on_the_message_row():
    d = drawn("a\nb", "<C-f>", *("q" * 200))
    assert d.terminal.cursor == (47, COLS - 1)
    assert d.message().startswith("Search: <") and d.message().endswith("q")
    assert d.terminal.display()[TEXT_TOP].rstrip() == "a"  # nothing scrolled
    d.press("<Enter>")
    message = d.message()
    assert len(message) == COLS and message.startswith('[ "qqq') and message.endswith(">")
    d = drawn("a", "<C-f>", *("中" * 100))
    assert d.message().startswith("Search: <")
    d.press("<BS>" * 1)
    assert d.editor.prompt == "中" * 99


def test_go_to_line_prompt_is_unchanged():
    d = drawn("\n".join(map(str, range(60))), "<C-g>", "4", "2")
    assert d.message() == "Go to line: 42"
    with pytest.raises(EditorError, match="go-to-line prompt"):
        d.editor.press("a")
    d.press("<Enter>")
    assert d.at() == (41, 0) and d.message() == ""


# ------------------------------------------------------------------------------- random walk

# Each text is walked in a file of its kind, highlighted (the screen's colours checked too).
WALK_PATHS = {"python": "walk.py", "crlf_tall": "walk.c", "long_and_controls": "walk.js"}
WALK_TEXTS = {
    "python": (
        "class A:\n    def f(self, x):\n        if x:\n            return x_1 + 2\n"
        "        return None\n\n\tdef g():\n\t\tpass\n" * 6
    ),
    "crlf_tall": "".join(f"  {i}\tline_{i} (é, 中)\r\n" for i in range(90)) + "end",
    "long_and_controls": "\x1b[31m\x07 " + "ab中_" * 70 + "\n\n   \n" + "y" * 300 + "\nz",
}
MOVES = ["<Left>", "<Right>", "<Up>", "<Down>", "<Home>", "<End>", "<C-Left>", "<C-Right>"]
EDITS = ["<Enter>", "<Tab>", "<BS>", "<C-BS>", "<Del>", "<C-BS>", "<Enter>"]
CHARS = list("ax_ (.;") + ["中", "é", "<"]
QUERY_CHARS = list("ale_ 1") + ["中", "<", "é"]
CONTROLS = [key for key, char in CONTROL.items() if char != "\n"]


def walk_keys(rng: random.Random, ed: Editor) -> list[str]:
    """The next keys of a random walk: always keys the editor takes in its state."""
    if ed.quoting:
        return [rng.choice(CONTROLS)]
    if ed.prompt is not None:
        if ed.prompt_label != SEARCH_LABEL:
            return [rng.choice(["1", "7", "0", "<BS>", "<Enter>", "<Enter>", "<C-c>"])]
        r = rng.random()
        if r < 0.3 and not ed.prompt:  # a piece of the text, so that searches find things
            line = rng.choice(ed.lines)
            start = rng.randrange(len(line) + 1)
            piece = [c for c in line[start : start + rng.randint(1, 4)] if is_typable(c)]
            return piece or ["a"]
        if r < 0.6:
            return [rng.choice(QUERY_CHARS)]
        return [rng.choice(["<BS>", "<Enter>", "<Enter>", "<Enter>", "<C-c>", "<Esc>"])]
    r = rng.random()
    if r < 0.35:
        return [rng.choice(MOVES)]
    if r < 0.55:
        return [rng.choice(CHARS)]
    if r < 0.75:
        return [rng.choice(EDITS)]
    if r < 0.85:
        return ["<C-f>"]
    return [
        rng.choice(
            ["<PgUp>", "<PgDn>", "<C-g>", "<C-v>", "<C-s>", "<C-k>", "<U+200B>", "<Up>", "<Down>"]
        )
    ]


@pytest.mark.parametrize("name", sorted(WALK_TEXTS))
@pytest.mark.parametrize("seed", [1, 2])
def test_random_walk_screen_equals_the_oracle(name, seed):
    rng = random.Random(f"{name}:{seed}")
    d = Drawn(WALK_TEXTS[name], WALK_PATHS[name])
    pressed: dict[str, int] = {}
    outcomes = set()
    for step in range(1200):
        for key in walk_keys(rng, d.editor):
            ed = d.editor
            searching = ed.prompt is not None and ed.prompt_label == SEARCH_LABEL
            was = d.at()
            ed.press(key)
            pressed[key] = pressed.get(key, 0) + 1
            d.flush(f"{name} seed {seed} step {step} {key!r}")
            message = d.message()
            if message == "[ Search Wrapped ]" or message.endswith(" not found ]"):
                outcomes.add(message[2])
            elif searching and key == "<Enter>" and d.at() != was:
                outcomes.add("found")
    # The walk exercised what it is for: word keys, and searches of every outcome.
    assert all(pressed.get(key, 0) > 5 for key in ("<C-Left>", "<C-Right>", "<C-BS>", "<C-f>"))
    assert outcomes == {"S", '"', "found"}


def test_the_new_tokens_come_last_so_training_ids_of_the_others_stay():
    from ghframes.store import actions
    from ghframes.training.chars import ACTION_NAMES

    assert actions.vocabulary()["version"] == "2.1"
    assert actions.TOKENS[-3:] == ("<C-Left>", "<C-Right>", "<C-BS>")
    assert ACTION_NAMES.index("<Enter>") == 95 and ACTION_NAMES.index("<C-?>") == 95 + 44
    assert ACTION_NAMES[-2:] == ["<U+XXXX>", "<other>"] and len(ACTION_NAMES) == 95 + 48 + 2
    keys = actions.vocabulary()["keys"]
    assert {"<C-Left>", "<C-Right>", "<C-BS>", "<C-f>"} <= set(keys)
    assert "autoindent" in keys["<Enter>"] and "Search prompt" in keys["<BS>"]
