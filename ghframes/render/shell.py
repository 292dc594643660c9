"""The shell's text: words quoted as a person types them, paths as git shows them, the prompt,
and what `git status` and `ls` print.

Everything here is typed or printed into the terminal, so every character it returns is one
the editor would type as itself (`cells.is_typable`); anything else is quoted, dropped or
shown in visible notation (`visible`).
"""

from __future__ import annotations

import re

from ghframes.render.cells import cells_width, glyph, is_typable
from ghframes.store.gittext import quote_path

USER_HOST = "dev@ghframes"
TAB_STOP = 8  # the terminal's tab stops
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


# Colours as a default Debian/Ubuntu bash prompt draws them (its .bashrc's PS1: bold green
# user@host, bold blue path), and as git colours its output on a terminal (color.ui=auto:
# staged paths green, unstaged and untracked red; a --stat graph's + green, - red).
PROMPT_USER, PROMPT_PATH, PROMPT_RESET = "\x1b[01;32m", "\x1b[01;34m", "\x1b[00m"
GIT_GREEN, GIT_RED, GIT_RESET = "\x1b[32m", "\x1b[31m", "\x1b[m"
STATUS_SECTIONS = {
    "Changes to be committed:": GIT_GREEN,
    "Changes not staged for commit:": GIT_RED,
    "Untracked files:": GIT_RED,
}
_STAT_GRAPH = re.compile(r"( .* \| +\d+ )(\+*)(-*)")


def prompt_for(repo: str, color: bool = True) -> str:
    """The shell prompt in `repo`'s folder, named by its last path part (typable, at most 40)."""
    name = repo.rstrip("/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if is_typable(c) and c != "$")[:40] or "repo"
    if not color:
        return f"{USER_HOST}:~/{name}$ "
    user, path, reset = PROMPT_USER, PROMPT_PATH, PROMPT_RESET
    return f"{user}{USER_HOST}{reset}:{path}~/{name}{reset}$ "


def coloured(command: str, lines: list[str]) -> list[str]:
    """A command's output lines (already `visible`) as git colours them on a terminal: the
    entries of `git status`'s sections, the graph of `git diff --stat`; others unchanged. The
    colour codes come from here only, around text already made visible."""
    if command == "git status":
        out, colour = [], None
        for line in lines:
            if line in STATUS_SECTIONS:
                colour = STATUS_SECTIONS[line]
            elif not line:
                colour = None
            elif colour is not None and line.startswith(" " * TAB_STOP):
                line = f"{line[:TAB_STOP]}{colour}{line[TAB_STOP:]}{GIT_RESET}"
            out.append(line)
        return out
    if command == "git diff --stat":
        out = []
        for line in lines:
            match = _STAT_GRAPH.fullmatch(line)
            if match is not None:
                head, plus, minus = match.groups()
                line = head
                line += f"{GIT_GREEN}{plus}{GIT_RESET}" if plus else ""
                line += f"{GIT_RED}{minus}{GIT_RESET}" if minus else ""
            out.append(line)
        return out
    return lines


def visible(line: str) -> str:
    """An output line as the terminal may show it: tabs at 8-column stops, and anything that is
    not typed as itself (controls, escapes) in the editor's visible notation (`^[`)."""
    line = line.expandtabs(TAB_STOP)
    if all(is_typable(c) for c in line):
        return line
    return "".join(c if is_typable(c) else glyph(c)[0] for c in line)


# `git status` (long format, git 2.x, no upstream): wt-status.c's labels, padded to the widest
# of them ("typechange:") plus one space.
STATUS_LABEL_WIDTH = 12
STATUS_LABELS = {"A": "new file:", "D": "deleted:", "M": "modified:", "R": "renamed:"}


def status_lines(
    branch: str,
    initial: bool,
    staged: dict[str, tuple[str, str | None]],
    unstaged: dict[str, str],
    untracked: list[str],
) -> list[str]:
    """What `git status` prints on branch `branch`: `staged` maps a path to (A, D or R, the
    path renamed from), `unstaged` a tracked path to M, `untracked` lists new files not added.
    `initial`: no commit yet. Tabs are kept, as git writes them."""

    def entry(code: str, path: str, source: str | None = None) -> str:
        label = STATUS_LABELS[code].ljust(STATUS_LABEL_WIDTH)
        names = (
            quote_path(path) if source is None else f"{quote_path(source)} -> {quote_path(path)}"
        )
        return f"\t{label}{names}"

    lines = [f"On branch {branch}"]
    if initial:
        lines += ["", "No commits yet", ""]
    if staged:
        unstage = "git rm --cached" if initial else "git restore --staged"
        lines += ["Changes to be committed:", f'  (use "{unstage} <file>..." to unstage)']
        lines += [entry(staged[p][0], p, staged[p][1]) for p in sorted(staged)]
        lines.append("")
    if unstaged:
        lines += [
            "Changes not staged for commit:",
            '  (use "git add <file>..." to update what will be committed)',
            '  (use "git restore <file>..." to discard changes in working directory)',
        ]
        lines += [entry(unstaged[p], p) for p in sorted(unstaged)]
        lines.append("")
    if untracked:
        lines += [
            "Untracked files:",
            '  (use "git add <file>..." to include in what will be committed)',
        ]
        lines += [f"\t{quote_path(p)}" for p in sorted(untracked)]
        lines.append("")
    if not staged:
        if unstaged:
            lines.append('no changes added to commit (use "git add" and/or "git commit -a")')
        elif untracked:
            lines.append(
                'nothing added to commit but untracked files present (use "git add" to track)'
            )
        else:
            lines.append("nothing to commit, working tree clean")
    return lines


# GNU ls on a terminal quotes names in the shell-escape style: these characters anywhere, and
# `#` or `~` first, make it quote the name (checked against coreutils 9.1).
LS_SPECIAL = set(" !\"$&'()*;<=>?[\\^`|")
LS_SPECIAL_FIRST = set("#~")
LS_MIN_COLUMN_WIDTH = 3  # ls.c's MIN_COLUMN_WIDTH: a name and the two spaces after it


def ls_name(name: str) -> str | None:
    """`name` as `ls` quotes it on a terminal, or None for the forms not reproduced here
    (a quote together with `$` and the like, or a character the terminal would not show)."""
    if not name or not all(is_typable(c) for c in name):
        return None
    special = [c for c in name if c in LS_SPECIAL]
    if not special and name[0] not in LS_SPECIAL_FIRST:
        return name
    if "'" not in name:
        return f"'{name}'"
    if all(c in " '" for c in special):  # a quote with spaces alone: git-like double quotes
        return f'"{name}"'
    return None


def ls_lines(names: list[str], width: int) -> list[str] | None:
    """What `ls -C` prints at a `width`-column terminal for a folder holding `names` (sorted,
    hidden ones included and left out here), or None when a name is not one `ls_name` shows.
    Columns follow ls.c's calculate_columns; tabs between columns are written as spaces."""
    visible_names = [n for n in names if not n.startswith(".")]
    quoted = [ls_name(n) for n in visible_names]
    if None in quoted:
        return None
    if not quoted:
        return []
    shown = quoted
    if quoted != visible_names:  # the others get a space in front, to line up with the quoted
        shown = [" " + q if q == n else q for q, n in zip(quoted, visible_names, strict=True)]
    lengths = [cells_width(s) for s in shown]
    n = len(shown)
    max_idx = width // LS_MIN_COLUMN_WIDTH + (width % LS_MIN_COLUMN_WIDTH != 0)
    max_cols = max_idx if 0 < max_idx < n else n
    col_arr = [[LS_MIN_COLUMN_WIDTH] * (i + 1) for i in range(max_cols)]
    line_len = [(i + 1) * LS_MIN_COLUMN_WIDTH for i in range(max_cols)]
    valid = [True] * max_cols
    for filesno, length in enumerate(lengths):
        for i in range(max_cols):
            if not valid[i]:
                continue
            idx = filesno // ((n + i) // (i + 1))
            real = length + (0 if idx == i else 2)
            if col_arr[i][idx] < real:
                line_len[i] += real - col_arr[i][idx]
                col_arr[i][idx] = real
                valid[i] = line_len[i] < width
    cols = max_cols
    while cols > 1 and not valid[cols - 1]:
        cols -= 1
    widths = col_arr[cols - 1]
    rows = n // cols + (n % cols != 0)
    lines = []
    for row in range(rows):
        parts = []
        for col, filesno in enumerate(range(row, n, rows)):
            last = filesno + rows >= n
            parts.append(shown[filesno] + ("" if last else " " * (widths[col] - lengths[filesno])))
        lines.append("".join(parts))
    return lines
