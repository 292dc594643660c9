"""The renderer's terminal parses and draws in bulk and remembers SGR (render/vtstream.py,
`_Screen.draw` and `select_graphic_rendition` in render/terminal.py) and leaves the screen exactly as pyte's own stream and draw do, for any byte
stream cut anywhere; the renderer's output takes the bulk paths."""

from __future__ import annotations

import pyte
from hypothesis import given, settings
from hypothesis import strategies as st

from ghframes.render import vtstream
from ghframes.render.terminal import Terminal, _Screen

PIECES = [
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    st.sampled_from(["한글", "e\u0301", "\u200b", "😀", "\t", "\r", "\n", "\b", "\x07"]),
    st.sampled_from(["\x0e", "\x0f", "\x00", "\x7f", "\x18", "\x1a", "\x9b", "\x9d"]),
    # CSI sequences: any final character, any parameters, private or not, sometimes unfinished
    st.builds(
        lambda private, params, final: f"\x1b[{private}{';'.join(params)}{final}",
        st.sampled_from(["", "?", "?"]),
        st.lists(
            st.sampled_from(["", "0", "1", "7", "38", "5", "208", "48", "99999", "²"]), max_size=5
        ),
        st.sampled_from(list("@ABCDEFGHJKLMPXacdefghlmnqrs`!$ >") + ["", "\r", "\x1b"]),
    ),
    st.sampled_from(["\x1b7", "\x1b8", "\x1bM", "\x1bD", "\x1bc", "\x1b#8", "\x1b(B", "\x1b%G"]),
    st.sampled_from(["\x1b]0;title\x07", "\x1b]2;t\x1b\\", "\x1b]R", "\x1b"]),
    st.sampled_from(
        ["\x1b[?1049h", "\x1b[?1049l", "\x1b[?25l", "\x1b[2J", "\x1b[H", "\x1b[0;1;7m"]
    ),
    # insert mode, autowrap off and on, colours; text long enough to reach the last column
    st.sampled_from(["\x1b[4h", "\x1b[4l", "\x1b[?7l", "\x1b[?7h", "\x1b[38;5;208m", "\x1b[1;27H"]),
    st.text(st.sampled_from("abc xyz_(){}"), min_size=20, max_size=40),
]


class _PyteScreen(_Screen):
    draw = pyte.Screen.draw  # pyte's own, character by character
    select_graphic_rendition = pyte.Screen.select_graphic_rendition  # pyte's, every time


def _state(screen: _Screen) -> tuple:
    buffer = {y: dict(row) for y, row in screen.buffer.items() if row}
    cursor = screen.cursor
    return (
        buffer,
        (cursor.x, cursor.y, cursor.hidden, cursor.attrs),
        set(screen.dirty),
        set(screen.mode),
        screen.margins,
        screen.title,
        screen.unknown_sequences,
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(PIECES), max_size=40), st.lists(st.integers(0, 400), max_size=6))
def test_the_screen_is_the_one_pytes_own_stream_leaves(pieces, cuts):
    data = "".join(pieces)
    theirs, ours = _PyteScreen(30, 8), _Screen(30, 8)
    streams = {"theirs": pyte.Stream(theirs), "ours": vtstream.Stream(ours)}
    raised = {name: [] for name in streams}
    at = 0
    for cut in sorted(c for c in cuts if c <= len(data)) + [len(data)]:
        for name, stream in streams.items():  # a sequence cut in two finishes in the next feed
            try:
                stream.feed(data[at:cut])
            except Exception as err:  # pyte raises on some sequences (`CSI ? @`): so must we
                raised[name].append(type(err))
        at = cut
    assert raised["ours"] == raised["theirs"]
    assert _state(ours) == _state(theirs)


def test_the_renderers_output_takes_the_bulk_path(monkeypatch):
    sent = []
    terminal = Terminal()
    original = terminal.stream._send_to_parser
    monkeypatch.setattr(terminal.stream, "_send_to_parser", lambda c: sent.append(c) or original(c))
    terminal.feed("\x1b[?1049h\x1b[1;1H\x1b[0;7m title \x1b[0m\x1b[38;5;208m42\x1b[m\r\n\x1b[K")
    assert sent == [] and terminal.display()[0].startswith(" title 42")
    terminal.feed("\x1b]0;x\x07")  # OSC: pyte's parser
    assert sent
