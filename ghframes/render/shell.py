"""The shell's text: words quoted as a person types them, paths as git shows them, the prompt.

Everything here is typed or printed into the terminal, so every character it returns is one
the editor would type as itself (`cells.is_typable`); anything else is quoted or dropped.
"""

from __future__ import annotations

import re

from ghframes.render.cells import is_typable

USER_HOST = "dev@ghframes"
MAX_SUBJECT_CHARS = 120

_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./+@%:,=][A-Za-z0-9_./+@%:,=-]*")


def shell_word(word: str) -> str:
    """`word` quoted the way a person types it in bash (every character typable)."""
    if _PLAIN_WORD.fullmatch(word):
        return word
    if all(is_typable(c) for c in word):
        return "'" + word.replace("'", "'\\''") + "'"
    parts = []
    for c in word:
        if is_typable(c) and c not in "'\\":
            parts.append(c)
        elif c in "'\\":
            parts.append("\\" + c)
        elif ord(c) < 0x100:
            parts.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            parts.append(f"\\u{ord(c):04x}")
        else:
            parts.append(f"\\U{ord(c):08x}")
    return "$'" + "".join(parts) + "'"


def shown_path(path: str) -> str:
    """`path` as git prints it: C-quoted when it holds characters a terminal would not show."""
    if all(is_typable(c) for c in path) and '"' not in path and "\\" not in path:
        return path
    parts = []
    for c in path:
        if c in '"\\':
            parts.append("\\" + c)
        elif is_typable(c):
            parts.append(c)
        else:
            parts.extend(f"\\{b:03o}" for b in c.encode())
    return '"' + "".join(parts) + '"'


def commit_subject(message: str) -> str:
    """The message's first line as typed: untypable characters dropped, at most 120 characters."""
    first = message.strip().split("\n", 1)[0] if message.strip() else ""
    subject = "".join(c for c in first if is_typable(c)).strip()[:MAX_SUBJECT_CHARS].rstrip()
    return subject or "(no message)"


def prompt_for(repo: str) -> str:
    """The shell prompt in `repo`'s folder, named by its last path part (typable, at most 40)."""
    name = repo.rstrip("/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if is_typable(c) and c != "$")[:40] or "repo"
    return f"{USER_HOST}:~/{name}$ "
