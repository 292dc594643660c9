"""Untrusted text made safe to print: `shown(text)` escapes what a terminal would act on.

Text from a repository (folder names, paths, commit messages), a server (API error bodies,
repository names) or a file reaches the user's terminal only through `shown`. Every character
that is not printable by Python's definition (`str.isprintable`: the Unicode categories
"Other" and "Separator" except the ASCII space) is replaced by visible notation, the same the
editor draws on screen (ghframes.render.cells.glyph):

- C0 controls and DEL as caret notation: ESC `^[`, BEL `^G`, newline `^J`, tab `^I`, DEL `^?`;
- everything else as its code point in hex between angle brackets: CSI (C1) `<9b>`, the
  right-to-left override `<202e>`, a zero-width space `<200b>`, the line separator `<2028>`,
  a surrogate left by an undecodable file name `<dc9b>`.

So an OSC title (`ESC ] 0 ; … BEL`), an OSC 52 clipboard write, a CSI sequence, a bidi
override or a forged second line cannot take effect; the reader sees what was there.
"""

from __future__ import annotations

import logging

__all__ = ["ShownFormatter", "shown"]


def _notation(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 64)
    if code == 0x7F:
        return "^?"
    return f"<{code:02x}>"


def shown(text: object) -> str:
    """`str(text)` with every non-printing character replaced by visible notation."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else _notation(c) for c in s)


class ShownFormatter(logging.Formatter):
    """A log formatter that escapes each message (its arguments quote names, paths, answers);
    a traceback appended to it keeps its line breaks."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return shown(super().formatMessage(record))
