"""The editor and its screen: golden screens, a differential oracle, and replay fidelity properties
(autoindent included)."""

from __future__ import annotations

import os
import pathlib
import random
import re

import pyte.graphics
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ghframes.render import editor as editor_module
from ghframes.render.cells import is_typable, line_cells
from ghframes.render.editor import Editor, EditorError
from ghframes.render.editor_view import TEXT_TOP
from ghframes.render.replay import keys_for_char, plan_edit
from ghframes.render.terminal import COLS, Terminal, text_of
from ghframes.store import actions

GOLDEN = pathlib.Path(__file__).parent / "golden"


def play(before: str, after: str, path: str = "f.txt", check_every: int = 1):
    """Render the planned edit into a terminal; check the screen against the model as it goes."""
    plan = plan_edit(before, after)
    out: list[str] = []
    terminal = Terminal()
    editor = Editor(before, path, out)
    editor.open()
    terminal.feed("".join(out))
    for k, action in enumerate(plan.actions):
        out.clear()
        editor.press(action)
        terminal.feed("".join(out))
        if k % check_every == 0 or k == len(plan.actions) - 1:
            assert_screen(terminal, editor, f"after action {k} {action!r}")
    assert editor.text == after
    assert not editor.modified
    assert terminal.unknown_sequences == 0
    return terminal, editor, plan


def assert_screen(terminal: Terminal, editor: Editor, where: str) -> None:
    """The terminal shows what the model's oracles draw from scratch: characters, the cursor,
    and every cell's colour and attributes."""
    rows, want = editor.expected_screen()
    shown = [row.rstrip() for row in terminal.display()]
    assert shown == [row.rstrip() for row in rows], where
    assert terminal.cursor == editor.expected_cursor(), where
    colours = screen_colours(terminal)
    for y, (row, wanted) in enumerate(zip(colours, want, strict=True)):
        assert row == wanted, f"{where}: colours of row {y} {shown[y]!r}"


# The colour contract's reading of a pyte cell (written here, independent of the Terminal's own
# capture, so that each checks the other): fg/bg "default" -> 0; SGR 30-37's names -> 1-7
# ("black" -> 16), 90-97's -> 8-15; a 256-colour hex -> the lowest index >= 1 that has it.
_NAMES = ["black", "red", "green", "brown", "blue", "magenta", "cyan", "white"]
_VALUE = {"default": 0, **{n: i for i, n in enumerate(_NAMES)}, "black": 16}
_VALUE |= {"bright" + n: 8 + i for i, n in enumerate(_NAMES)} | {"bfightmagenta": 13}
for _index in range(255, 0, -1):
    _VALUE[pyte.graphics.FG_BG_256[_index]] = _index
_BITS = (("bold", 1), ("italics", 2), ("underscore", 4), ("reverse", 8))
_BITS += (("strikethrough", 16), ("blink", 32))


_COLOUR_OF: dict[tuple, tuple[int, int, int]] = {}  # a Char's fields but its data -> colour


def cell_colour(char) -> tuple[int, int, int]:
    """(fg, bg, attrs) of a pyte Char, by the colour contract."""
    key = char[1:]
    colour = _COLOUR_OF.get(key)
    if colour is None:
        attrs = sum(bit for name, bit in _BITS if getattr(char, name))
        colour = _COLOUR_OF[key] = (_VALUE[char.fg], _VALUE[char.bg], attrs)
    return colour


def screen_colours(terminal: Terminal) -> list[list[tuple[int, int, int]]]:
    """Every cell's (fg, bg, attrs) on the terminal's screen, row by row."""
    screen = terminal.screen
    blank = cell_colour(screen.default_char)
    rows = []
    for y in range(screen.lines):
        row = [blank] * screen.columns
        for x, char in screen.buffer[y].items():
            if x < screen.columns:
                row[x] = cell_colour(char)
        rows.append(row)
    return rows


CASES = {
    "insert_line": ("def f(x):\n    return x\n", "def f(x):\n    y = x * 2\n    return y\n"),
    "tabs_and_controls": ("a\tb\n", "a\tb\tc\r\n\x1b[31mred\x07\n\x7f<200b>\u200b\u0301\n"),
    "wide_and_emoji": ("", "中文字符 wide — 😀 emoji\nｆｕｌｌ width\n"),
    "long_line_scrolled": ("short\n", "short\n" + "x" * 200 + "END"),
    "no_final_newline_crlf": ("one\r\ntwo\r\nthree", "one\r\n2\r\nthree\r\nfour"),
    "tall_file_far_edit": (
        "".join(f"line {i}\n" for i in range(120)),
        "".join(f"line {i}\n" if i != 97 else "changed line 97\n" for i in range(120)),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_screens(name):
    before, after = CASES[name]
    terminal, _, _ = play(before, after)
    text = "\n".join(row.rstrip() for row in terminal.display()) + "\n"
    golden = GOLDEN / f"editor_{name}.txt"
    if os.environ.get("GHFRAMES_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    elif not golden.exists():
        pytest.fail(
            f"{golden}: golden screen missing; write it with GHFRAMES_UPDATE_GOLDEN=1 "
            f"(then read it and commit it)"
        )
    assert text == golden.read_text(), (
        f"{golden}: screen differs (GHFRAMES_UPDATE_GOLDEN=1 rewrites)"
    )


def test_control_characters_are_shown_not_executed():
    terminal, _, _ = play("", "\x1b[2J\x1b]0;title\x07\x9b31m\x00end")
    assert terminal.display()[TEXT_TOP].startswith("^[[2J^[]0;title^G<9b>31m^@end")
    assert terminal.unknown_sequences == 0


def test_wide_character_cut_at_the_right_edge_shows_a_space():
    line = "a" * 158 + "中" + "b"
    assert line_cells(line) == "a" * 158 + " >"


def test_horizontal_scroll_keeps_the_cursor_on_screen():
    terminal, editor, _ = play("", "y" * 400)
    row = terminal.display()[TEXT_TOP]
    assert row.startswith("<") and terminal.cursor[1] < COLS
    assert editor.col == 400


def test_unknown_action_is_refused():
    editor = Editor("x")
    with pytest.raises(EditorError, match="unknown action"):
        editor.press("<F13>")
    with pytest.raises(EditorError, match="not a printable"):
        editor.press("\x1b")


def test_go_to_line_prompt_and_cancel():
    editor = Editor("\n".join(map(str, range(100))))
    for key in ["<C-g>", "5", "0", "<Enter>"]:
        editor.press(key)
    assert (editor.row, editor.col) == (49, 0)
    for key in ["<C-g>", "9", "<C-c>"]:
        editor.press(key)
    assert editor.row == 49 and editor.prompt is None


ALPHABET = st.sampled_from(
    list("abcxyz  ;(){}")
    + [
        "\t",
        "\r",
        "\x1b",
        "\x00",
        "\x7f",
        "\x85",
        "\u200b",
        "\u0301",
        "é",
        "中",
        "😀",
        "ｆ",
        "\U000e0001",
        "\u2028",
        # whole escape sequences a terminal would act on: clear, colour, title, C1 CSI, reset,
        # alternate screen, line-drawing charset, cursor move
        "\x1b[2J",
        "\x1b[31m",
        "\x1b]0;t\x07",
        "\x9b1m",
        "\x1bc",
        "\x1b[?1049h",
        "\x1b(0",
        "\x1b[5;5H",
    ]
)
INDENT = st.sampled_from(["", "", "", "    ", "\t", "  \t", "        ", "\t\t"])
LINE = st.one_of(
    st.tuples(INDENT, st.lists(ALPHABET, max_size=12).map("".join)).map("".join),
    st.integers(150, 330).map(lambda n: ("ab中" * 120)[:n]),
)
TEXT = st.lists(LINE, max_size=60).map("\n".join)


# Every kind of content at least once, whatever hypothesis draws: a CRLF file taller than the
# screen, without a final newline, with tabs, wide characters, controls and escape sequences, and
# lines wider than the screen, edited near its end.
TALL = "".join(f"{i}\tl\u00e9ne 中{i}\x1b[1m\r\n" for i in range(70)) + "y" * 200 + "\x07end"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=TEXT, after=TEXT)
@example(before=TALL, after=TALL.replace("65\t", "65 😀\t").replace("y" * 200, "y" * 170 + "z"))
def test_replay_is_exact_and_screen_matches_model(before, after):
    play(before, after, "f.py", check_every=7)  # highlighted: the colours are checked too


@settings(max_examples=30, deadline=None)
@given(before=TEXT, data=st.data())
def test_small_edits_of_a_file(before, data):
    lines = before.split("\n")
    k = data.draw(st.integers(0, len(lines) - 1))
    lines[k] = data.draw(LINE) + lines[k][::2]
    if data.draw(st.booleans()):
        lines.insert(data.draw(st.integers(0, len(lines))), data.draw(LINE))
    play(before, "\n".join(lines), "f.c", check_every=3)


def test_frames_text_round_trip():
    terminal, _, _ = play("", "中a")
    assert text_of(terminal.capture())[TEXT_TOP].startswith("中a")


def test_every_key_the_editor_handles_is_in_the_vocabulary():
    """The editor's keys and the control keys <C-v> takes are exactly the vocabulary's named
    tokens; <C-c> and <Esc> (prompts), <C-d> (shell) mean something outside <C-v> too."""
    handled = set(editor_module._KEYS) | set(actions.CONTROL)
    assert len(actions.TOKENS) == len(set(actions.TOKENS))
    assert handled == set(actions.TOKENS)
    assert set(actions.vocabulary()["keys"]) - set(editor_module._KEYS) == {
        "<C-c>",
        "<C-d>",
        "<Esc>",
    }
    assert editor_module.QUOTE_OF["\x1b"] == "<Esc>" and len(editor_module.QUOTE_OF) == 33


def test_keys_typed_for_any_character_are_actions():
    """Every key the planner types a character with is printable (by the vocabulary's rule), a
    named token, or a code point by number matching the vocabulary's pattern."""
    from pyte.screens import wcwidth

    widths = actions.vocabulary()["printable"]["wcwidth"]
    by_number = re.compile(actions.BY_NUMBER_PATTERN)
    chars = [chr(c) for c in [*range(0x300), 0x85, 0x200B, 0x2028, 0x4E2D, 0xFF46, 0x1F600]]
    chars += [chr(0xE0001), chr(0x10FFFF)]
    for char in chars:
        if char == "\n":
            continue
        assert is_typable(char) == (char != "\t" and wcwidth(char) in widths), hex(ord(char))
        for key in keys_for_char(char):
            printable = len(key) == 1 and is_typable(key)
            assert printable or key in actions.TOKENS or by_number.match(key), key


# The planner and autoindent: new lines are opened below the line above, and the indentation
# <Enter> copied is kept as far as the new line shares it.

PY_BEFORE = """class Stack:
    def __init__(self):
        self.items = []

    def push(self, x):
        self.items.append(x)
"""
PY_AFTER = """class Stack:
    def __init__(self):
        self.items = []
        self.limit = None

    def push(self, x):
        if self.limit is not None and len(self.items) >= self.limit:
            raise OverflowError(x)

        self.items.append(x)

    def pop(self):
        return self.items.pop()
"""
GO_BEFORE = "package main\n\nfunc main() {\n\tfor i := 0; i < 3; i++ {\n\t\tprint(i)\n\t}\n}\n"
GO_AFTER = (
    'package main\n\nimport "fmt"\n\nfunc main() {\n\tfor i := 0; i < 3; i++ {\n'
    "\t\tif i%2 == 0 {\n\t\t\tfmt.Println(i)\n\t\t}\n\n\t\tprint(i)\n\t}\n\tdone()\n}\n"
)

PLAN_CASES = {
    "python_blocks_inside_indented_code": (PY_BEFORE, PY_AFTER),
    "go_tabs": (GO_BEFORE, GO_AFTER),
    "crlf_indented": (
        "def f():\r\n    a = 1\r\n    return a\r\n",
        "def f():\r\n    a = 1\r\n    if a:\r\n        a += 1\r\n\r\n    return a\r\n",
    ),
    "no_final_newline": ("if x:\n    y()", "if x:\n    y()\n    z()\n        deeper"),
    "top_of_file_before_indented_line": (
        "    indented\nx\n",
        "import os\n\tfoo\n    indented\nx\n",
    ),
    "top_of_file_indented_block": ("\tbody\n", "\thead\n\t\tmore\n\n\tbody\n"),
    "blank_and_blank_looking_lines": (
        "    a\n    b\n",
        "    a\n\n    \n  \t\n\t\n    a2\n    b\n",
    ),
    "dedent_partially": (
        "            deep\nend\n",
        "            deep\n        less\n    least\nend\n",
    ),
    "tabs_to_spaces": ("\t\tt\n", "\t\tt\n  s\n\t  ts\n"),
    "replace_whole_file": ("    old\n\told2", "    new\n        newer\n"),
    "replace_dissimilar_line_in_block": (
        "def f():\n    x = compute(1)\n    return x\n",
        "def f():\n    while True: pass\n    return x\n",
    ),
    "empty_to_indented": ("", "    a\n        b\n\n    c"),
    "lines_ending_in_blanks": ("x  \n", "x  \n  \n  y  \n"),
}


@pytest.mark.parametrize("name", sorted(PLAN_CASES))
def test_plan_edit_is_exact_with_autoindent(name):
    before, after = PLAN_CASES[name]
    _, editor, plan = play(before, after)  # checks the screen at every key, and the result
    assert editor.text == after
    assert plan_edit(before, after).actions == plan.actions  # deterministic


def test_new_lines_open_from_the_line_above_and_reuse_its_indentation():
    before = "def f():\n    a = 1\n    return a\n"
    after = "def f():\n    a = 1\n    b = 2\n    return a\n"
    plan = plan_edit(before, after)
    assert plan.actions == ["<Down>", "<End>", "<Enter>", *"b = 2", "<C-s>"]
    assert plan.typed == 1 + len("b = 2")


def test_deeper_and_shallower_lines_type_and_delete_only_the_difference():
    before = "if a:\n    b\n"
    after = "if a:\n    b\n        c\n    d\n"
    plan = plan_edit(before, after)
    assert plan.actions == [
        *["<Down>", "<End>", "<Enter>", " ", " ", " ", " ", "c"],
        *["<Enter>", "<BS>", "<BS>", "<BS>", "<BS>", "d", "<C-s>"],
    ]


def test_a_blank_line_after_an_indented_one_is_one_ctrl_bs():
    plan = plan_edit("x\n    y\nw\n", "x\n    y\n\n    z\nw\n")
    assert plan.actions == ["<Down>", "<End>", "<Enter>", "<C-BS>", "<Enter>", *"    z", "<C-s>"]


def test_insertion_at_the_top_of_the_file():
    plan = plan_edit("    a\n", "b\n    a\n")
    assert plan.actions == ["<Enter>", "<Up>", "b", "<C-s>"]
    plan = plan_edit("    a\n", "    b\n    a\n")
    assert plan.actions[:3] == ["<Enter>", "<Up>", " "]
    plan = plan_edit("q\n    a\n", "q\n    b\n    c\n    a\n")  # opened below `q`, not at `a`
    assert plan.actions[:3] == ["<End>", "<Enter>", " "]


def test_a_new_file_is_typed_from_its_first_line():
    plan = plan_edit("", "    a\n\tb\n")
    assert plan.actions == [*"    a", "<Enter>", "<C-BS>", "<Tab>", "b", "<Enter>", "<BS>", "<C-s>"]
    assert plan_edit("", "y\n").actions == ["y", "<Enter>", "<C-s>"]


def test_indented_text_never_gets_its_indentation_twice():
    """Random indented code inserted anywhere in indented code replays exactly."""
    rng = random.Random(7)
    pieces = ["", "    ", "\t", "        ", "  \t", "\t\t", " "]
    words = ["x = 1", "pass", "", "if y:", "}", "return (a, b)", "\r", "中文", "  "]
    for _ in range(150):
        before = [rng.choice(pieces) + rng.choice(words) for _ in range(rng.randint(0, 8))]
        after = list(before)
        for _ in range(rng.randint(1, 4)):
            at = rng.randint(0, len(after))
            after[at:at] = [
                rng.choice(pieces) + rng.choice(words) for _ in range(rng.randint(1, 4))
            ]
        if after and rng.random() < 0.3:
            after.pop(rng.randrange(len(after)))
        ending = rng.choice(["", "\n"])
        b, a = "\n".join(before) + ending, "\n".join(after) + ending
        plan = plan_edit(b, a)
        ed = Editor(b)
        for key in plan.actions:
            if key == "<Enter>" and ed.prompt is None:  # never in front of text on the line
                assert ed.col in (0, len(ed.lines[ed.row])), (b, a)
            ed.press(key)
        assert ed.text == a, (b, a)
