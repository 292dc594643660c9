"""The editor's colours: one fixed dark 256-colour theme (token type -> colour and attributes),
the styles of its bars and prompts, and the SGR sequences that switch between them.

A style is `(fg, bg, attrs)` as the frames store a cell (schemas/frames.json, colour contract):
fg/bg 0 is the terminal's default colour, 1..255 an xterm-256 palette index; attrs bits 1 bold,
2 italic, 4 underline, 8 reverse. The editor names a style by one character (`chr` of its
number in `STYLES`, "\\0" the default), so that a row's styles are a string as long as its
cells and compare as fast as its text.

The theme, in the spirit of nano's and micro's dark defaults (a token type not listed takes
its parent's colour; `Name`, `Punctuation`, `Text` and `Error` stay in the default colour):

| token type (Pygments)                | colour (xterm-256)   | attributes |
|--------------------------------------|----------------------|------------|
| Keyword, Operator.Word               | 204 pink             | bold       |
| Keyword.Constant (True, None, null)  | 141 purple           |            |
| Keyword.Type (int, size_t)           | 81 cyan              |            |
| Name.Function, Name.Attribute        | 149 green            |            |
| Name.Class                           | 149 green            | bold       |
| Name.Decorator                       | 179 gold             |            |
| Name.Builtin, Name.Exception         | 81 cyan              |            |
| Name.Tag (markup)                    | 204 pink             |            |
| Name.Variable, Name.Constant         | 215 orange           |            |
| String                               | 186 khaki            |            |
| String.Escape, String.Interpol       | 141 purple           |            |
| Number, Name.Entity                  | 141 purple           |            |
| Operator                             | 203 red              |            |
| Comment                              | 245 grey             | italic     |
| Comment.Preproc (#include, #define)  | 173 brown            |            |
| Comment.PreprocFile (<stdio.h>)      | 186 khaki            |            |
| Generic.Heading                      | 81 cyan              | bold       |
| Generic.Subheading                   | 81 cyan              |            |
| Generic.Inserted / Generic.Deleted   | 114 green / 203 red  |            |
| Generic.Emph / Generic.Strong        | default              | italic / bold |

The title and status bars are reverse video, as are notices on the message row; prompt
labels are bold. Every palette index here reads back from pyte as itself (no other index
at or below it shares its RGB value), so the frames hold exactly the theme's numbers.
"""

from __future__ import annotations

from pygments import token as T

Style = tuple[int, int, int]  # (fg, bg, attrs)

BOLD, ITALIC, UNDERLINE, REVERSE = 1, 2, 4, 8
DEFAULT: Style = (0, 0, 0)
BAR: Style = (0, 0, REVERSE)  # the title and status rows, notices
LABEL: Style = (0, 0, BOLD)  # a prompt's label

THEME: dict[T._TokenType, tuple[int, int]] = {
    T.Keyword: (204, BOLD),
    T.Keyword.Constant: (141, 0),
    T.Keyword.Type: (81, 0),
    T.Operator: (203, 0),
    T.Operator.Word: (204, BOLD),
    T.Name: (0, 0),
    T.Name.Function: (149, 0),
    T.Name.Attribute: (149, 0),
    T.Name.Class: (149, BOLD),
    T.Name.Decorator: (179, 0),
    T.Name.Builtin: (81, 0),
    T.Name.Exception: (81, 0),
    T.Name.Tag: (204, 0),
    T.Name.Variable: (215, 0),
    T.Name.Constant: (215, 0),
    T.Name.Entity: (141, 0),
    T.String: (186, 0),
    T.String.Escape: (141, 0),
    T.String.Interpol: (141, 0),
    T.Number: (141, 0),
    T.Comment: (245, ITALIC),
    T.Comment.Preproc: (173, 0),
    T.Comment.PreprocFile: (186, 0),
    T.Generic.Heading: (81, BOLD),
    T.Generic.Subheading: (81, 0),
    T.Generic.Inserted: (114, 0),
    T.Generic.Deleted: (203, 0),
    T.Generic.Emph: (0, ITALIC),
    T.Generic.Strong: (0, BOLD),
}

# Every style the editor draws, numbered once in a fixed order; a style's character is chr(n).
STYLES: list[Style] = [DEFAULT, BAR, LABEL]
STYLES += sorted({(fg, 0, attrs) for fg, attrs in THEME.values()} - set(STYLES))
_CHAR = {style: chr(n) for n, style in enumerate(STYLES)}
PLAIN, BAR_CHAR, LABEL_CHAR = _CHAR[DEFAULT], _CHAR[BAR], _CHAR[LABEL]


def style_char(style: Style) -> str:
    """The one-character name of `style` (one of `STYLES`)."""
    return _CHAR[style]


def style_of(char: str) -> Style:
    """The style a style character names."""
    return STYLES[ord(char)]


_TOKEN_CHARS: dict[T._TokenType, str] = {}


def token_style(ttype: T._TokenType) -> str:
    """The style character the theme draws `ttype` in (its nearest listed ancestor's)."""
    char = _TOKEN_CHARS.get(ttype)
    if char is None:
        t = ttype
        while t not in THEME and t.parent is not None:
            t = t.parent
        fg, attrs = THEME.get(t, (0, 0))
        char = _TOKEN_CHARS[ttype] = _CHAR[(fg, 0, attrs)]
    return char


# SGR parameters that turn an attribute on / off (the colour contract's subset).
_ON = ((BOLD, "1"), (ITALIC, "3"), (UNDERLINE, "4"), (REVERSE, "7"))
_OFF = ((BOLD, "22"), (ITALIC, "23"), (UNDERLINE, "24"), (REVERSE, "27"))


def _colour(value: int, base: int) -> str:
    """SGR parameters for palette index `value` as foreground (base 30) or background (40):
    the 16 system colours by their short codes, the rest as 38;5;n / 48;5;n."""
    if 1 <= value <= 7:
        return str(base + value)
    if 8 <= value <= 15:
        return str(base + 60 + value - 8)
    return f"{base + 8};5;{value}"


def _params(style: Style) -> list[str]:
    fg, bg, attrs = style
    out = [code for bit, code in _ON if attrs & bit]
    if fg:
        out.append(_colour(fg, 30))
    if bg:
        out.append(_colour(bg, 40))
    return out


def _transition(old: Style | None, new: Style) -> str:
    """The shortest SGR sequence that takes the terminal from `old` (None: unknown) to `new`."""
    if new == DEFAULT:
        return "\x1b[m"
    full = "\x1b[0;" + ";".join(_params(new)) + "m"
    if old is None:
        return full
    (ofg, obg, oat), (fg, bg, at) = old, new
    parts = [code for bit, code in _OFF if oat & bit and not at & bit]
    parts += [code for bit, code in _ON if at & bit and not oat & bit]
    if fg != ofg:
        parts.append(_colour(fg, 30) if fg else "39")
    if bg != obg:
        parts.append(_colour(bg, 40) if bg else "49")
    diff = "\x1b[" + ";".join(parts) + "m"
    return diff if len(diff) < len(full) else full


_SGR: dict[tuple[str | None, str], str] = {}


def sgr(old: str | None, new: str) -> str:
    """The SGR sequence from style character `old` (None: unknown) to `new`."""
    key = (old, new)
    seq = _SGR.get(key)
    if seq is None:
        seq = _SGR[key] = _transition(None if old is None else style_of(old), style_of(new))
    return seq
