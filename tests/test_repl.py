"""render/repl.py: a REPL transcript played at a python3 prompt, frame by frame.

The expected screens come from a plain model of a terminal that only ever appends text (no
line is wider than the screen): the lines written so far, the last ROWS of them shown. The
recorder's path (render/recorder.py, its chunks decoded) gives the same frames, colours and
cursors.
"""

from __future__ import annotations

import numpy as np
import pytest

from ghframes.errors import GhframesError
from ghframes.render.recorder import Recorder
from ghframes.render.repl import BANNER, PS1, PYTHON, play, reveal_line
from ghframes.render.shell import prompt_for
from ghframes.render.terminal import ROWS, text_of
from ghframes.store.codec import decode_chunk, decode_cursors
from ghframes.store.planes import PLANES, decode_plane

START = [("a, b, c = 0, 1, 2", None)]
SWAPS = ["a, b = b, a", "b, c = c, b", "a, c = c, a"]


def swap_transcript(n: int) -> list[tuple[str, str | None]]:
    """`n` swaps of three variables, the state printed after every fourth and at the end."""
    values = {"a": 0, "b": 1, "c": 2}
    out = list(START)
    for k in range(n):
        statement = SWAPS[k % 3]
        x, y = statement[0], statement[3]
        values[x], values[y] = values[y], values[x]
        out.append((statement, None))
        if k % 4 == 3 or k == n - 1:
            out.append(("print(a, b, c)", f"{values['a']} {values['b']} {values['c']}"))
    return out


def plain_text(transcript, reveals="typed") -> list[str]:
    """The text on screen before each key: (T,) strings of the lines written so far."""
    text = "dev@ghframes:~/repl$ "
    texts = []
    for c in PYTHON:
        texts.append(text)
        text += c
    texts.append(text)
    text += "\n" + "".join(line + "\n" for line in BANNER) + PS1
    for statement, output in transcript:
        line, printed = statement, output
        if output is not None and reveals == "typed":
            line, printed = reveal_line(statement, output)[0], "True"
        for c in line:
            texts.append(text)
            text += c
        texts.append(text)
        text += "\n" + (printed + "\n" if printed is not None else "") + PS1
    texts.append(text)  # before <C-d>
    return texts


@pytest.mark.parametrize("n", [3, 60])  # 60 swaps: well past 48 rows, the screen has scrolled
def test_every_frame_is_the_screen_of_the_lines_so_far(n):
    transcript = swap_transcript(n)
    played = play(transcript, color=False)
    texts = plain_text(transcript)
    assert played.num_frames == len(texts) == len(played.actions)
    for t, text in enumerate(texts):
        lines = text.split("\n")
        shown = lines[-ROWS:]
        screen = [row.rstrip() for row in text_of(played.frames[t])]
        assert screen == [s.rstrip() for s in shown] + [""] * (ROWS - len(shown)), t
        assert tuple(played.cursor[t]) == (len(shown) - 1, len(lines[-1])), t
    if n == 60:
        assert len(texts[-1].split("\n")) > ROWS
        assert text_of(played.frames[-1])[ROWS - 1].rstrip() == ">>>"
        assert not any("python3" in row for row in text_of(played.frames[-1]))


def test_the_keys_are_the_lines_typed():
    played = play(swap_transcript(2))
    typed = "".join(a if len(a) == 1 else "\n" for a in played.actions)
    assert (
        typed == "python3\na, b, c = 0, 1, 2\na, b = b, a\nb, c = c, b\n(a, b, c) == (1, 2, 0)\n\n"
    )
    assert played.actions[-1] == "<C-d>"
    assert played.entry_of_frame.tolist() == [-1] * 8 + sum(
        ([k] * (len(line) + 1) for k, line in enumerate(typed.split("\n")[1:-2])), []
    ) + [-1]


def test_the_mask_covers_exactly_the_answer_keys():
    transcript = swap_transcript(9)
    played = play(transcript)
    answers = [(s, o) for s, o in transcript if o is not None]
    keys = [a for a, m in zip(played.actions, played.answer, strict=True) if m]
    assert "".join(keys) == "".join(o.replace(" ", "") for _, o in answers)
    # each answer key is typed on a frame whose line reads `>>> (a, b, c) == (` and the
    # values before it: the state is not on the screen when the key is pressed
    for t in np.flatnonzero(played.answer):
        row, col = played.cursor[t]
        line = text_of(played.frames[t])[row][:col]
        assert line.startswith(">>> (a, b, c) == ("), line
        assert line[-1] in "(, ", line
    assert played.answer.sum() == 3 * len(answers)


def test_reveal_lines():
    assert reveal_line("print(a, b, c)", "2 0 1") == ("(a, b, c) == (2, 0, 1)", [14, 17, 20])
    assert reveal_line("print(x)", "10") == ("(x) == (10)", [8, 9])
    assert reveal_line("(a, b)", "(2, 0)") == ("(a, b) == (2, 0)", [11, 14])
    assert reveal_line("a", "2") == ("a == 2", [5])
    with pytest.raises(GhframesError) as err:
        reveal_line("print(a, b)", "1 2 3")
    assert str(err.value) == "reveal 'print(a, b)': prints '1 2 3', not one word per argument (2)"


def test_a_compound_statement_ends_with_an_empty_line():
    played = play([("a, b = 1, 2", None), ("if random() < 0.5: a, b = b, a", None)], color=False)
    screen = [row.rstrip() for row in text_of(played.frames[-1])]
    assert screen[3:7] == [">>> a, b = 1, 2", ">>> if random() < 0.5: a, b = b, a", "...", ">>>"]
    assert played.actions[-3:] == ["<Enter>", "<Enter>", "<C-d>"]
    assert played.entry_of_frame[-3:].tolist() == [1, 1, -1]


def test_a_cleared_screen_shows_only_the_line_being_typed():
    transcript = swap_transcript(6)
    plain, cleared = play(transcript, color=False), play(transcript, color=False, clear=True)
    # The same keys, and <C-l> after every entry's last <Enter>.
    keys = [a for a in cleared.actions if a != "<C-l>"]
    assert keys == plain.actions
    assert cleared.actions.count("<C-l>") == len(transcript)
    enters = [i for i, a in enumerate(cleared.actions) if a == "<Enter>"][1:]  # after python3
    assert all(cleared.actions[i + 1] == "<C-l>" for i in enters)
    assert np.array_equal(cleared.answer[np.array(cleared.actions) != "<C-l>"], plain.answer)
    # After the first clear, every frame but those just before a <C-l> (the entry's output and
    # the next prompt) holds one line at the top: the prompt and what was typed after it.
    first = cleared.actions.index("<C-l>") + 1
    line = PS1
    for t in range(first, cleared.num_frames):
        action = cleared.actions[t]
        if action == "<C-l>":
            line = PS1
            continue
        screen = [row.rstrip() for row in text_of(cleared.frames[t])]
        assert screen == [line.rstrip()] + [""] * (ROWS - 1), t
        assert tuple(cleared.cursor[t]) == (0, len(line)), t
        line += action if len(action) == 1 else ""


def test_frames_are_the_recorders():
    """The same keys and output through render/recorder.py: the same chunks' frames, planes
    and cursors (the shell prompt is in colour)."""
    transcript = swap_transcript(5)
    played = play(transcript)
    recorder = Recorder()
    recorder.terminal.feed(prompt_for("repl"))
    recorder.frame()
    texts = plain_text(transcript)
    for t, action in enumerate(played.actions[:-1]):
        echo = texts[t + 1][len(texts[t]) :].replace("\n", "\r\n")
        recorder.act(action, echo)
    recorder.act(played.actions[-1], None)
    chunk = {k: v[0] for k, v in recorder.finish().items()}
    n = chunk["num_frames"]
    assert n == played.num_frames
    frames = decode_chunk(chunk["frames"], chunk["frame_itemsize"], n)
    assert np.array_equal(frames, played.frames)
    for i, name in enumerate(PLANES):
        assert np.array_equal(decode_plane(chunk[name], n), played.planes[i]), name
    cursor = decode_cursors(np.frombuffer(chunk["cursor"], np.uint8).reshape(-1, 2), [0])
    assert np.array_equal(cursor, played.cursor)
    assert played.planes[0, 0, 0, 0] != 0  # the prompt's colour: user@host in green
    assert list(chunk["actions"]) == played.actions


def test_output_is_shown_not_obeyed():
    """Printed output reaches the screen through shell.visible: an escape sequence is shown as
    `^[` and sets no colour, a tab is spaces, a title sequence changes nothing."""
    hostile = "\x1b[31mred\x1b]0;title\x07\tend"
    played = play([("x", hostile)], reveals="printed")
    row = text_of(played.frames[-1])[4].rstrip()
    assert row.startswith("^[[31mred^[]0;title^G  ") and row.endswith("  end")
    assert not played.planes[:, -1, 4].any()


def test_untypable_statements_are_refused():
    with pytest.raises(GhframesError) as err:
        play([("a = '\x1b[2J'", None)])
    assert str(err.value) == (
        "transcript entry 0: \"a = '\\x1b[2J'\" holds a character that is not typed as itself "
        "('\\x1b')"
    )
    with pytest.raises(GhframesError) as err:
        play([("a", "1")], reveals="shown")
    assert str(err.value) == "reveals must be one of typed, printed, got 'shown'"
