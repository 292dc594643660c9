"""git's own text, as git 2.x prints it: quoted paths, `{a => b}` rename names, line counts,
the shortstat line and the `--stat` lines (git's quote.c and diff.c, followed line by line).

It is the text of the edits table's `summary` column, which the crawl writes
(ghframes.crawl.gitdiff), and of what the render prints for `git diff --stat` and
`git status`; so it sits in the base layer both stand on. Every string returned is printable
ASCII wherever the path was quoted, and otherwise the path's own characters (git quotes
nothing else).
"""

from __future__ import annotations

# git's `diff.c`: a rename score is out of MAX_SCORE (a double there, hence the floats).
MAX_SCORE = 60000.0
# quote.c's cq_lookup: the bytes git writes as a backslash and a letter.
_C_ESCAPES = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 0x22: '"', 0x5C: "\\"}


def _must_quote(byte: int) -> bool:
    """Whether git (core.quotePath on, its default) escapes `byte` in a path."""
    return byte < 0x20 or byte in (0x22, 0x5C, 0x7F) or byte >= 0x80


def path_bytes(path: str) -> bytes:
    """The bytes of a path as pygit2 decoded it (undecodable bytes kept as lone surrogates)."""
    return path.encode("utf-8", "surrogateescape")


def quote_path(path: str) -> str:
    """`path` as git prints it: in double quotes with C escapes (octal for other bytes) when it
    holds a control character, a quote, a backslash, DEL or any non-ASCII byte."""
    raw = path_bytes(path)
    if not any(_must_quote(b) for b in raw):
        return path
    parts = ['"']
    for b in raw:
        if not _must_quote(b):
            parts.append(chr(b))
        elif b in _C_ESCAPES:
            parts.append("\\" + _C_ESCAPES[b])
        else:
            parts.append(f"\\{b:03o}")
    parts.append('"')
    return "".join(parts)


def rename_name(old: str, new: str) -> str:
    """`old => new` as git's pprint_rename writes it, common leading folders and trailing path
    parts folded into `pfx{a => b}sfx`; both quoted in full when either needs quoting."""
    if quote_path(old) != old or quote_path(new) != new:
        return f"{quote_path(old)} => {quote_path(new)}"
    a, b = path_bytes(old), path_bytes(new)
    len_a, len_b = len(a), len(b)
    pfx = 0
    i = 0
    while i < len_a and i < len_b and a[i] == b[i]:
        if a[i] == 0x2F:
            pfx = i + 1
        i += 1
    # The suffix loop starts at the strings' terminating NULs (equal) and may run one byte into
    # the prefix, to see its closing slash.
    adjust = 1 if pfx else 0
    pa, pb = len_a, len_b
    sfx = 0
    while pfx - adjust <= pa and pfx - adjust <= pb:
        ca = a[pa] if pa < len_a else 0
        cb = b[pb] if pb < len_b else 0
        if ca != cb:
            break
        if ca == 0x2F:
            sfx = len_a - pa
        pa -= 1
        pb -= 1
    mid_a = max(len_a - pfx - sfx, 0)
    mid_b = max(len_b - pfx - sfx, 0)
    out = bytearray()
    if pfx + sfx:
        out += a[:pfx] + b"{"
    out += a[pfx : pfx + mid_a] + b" => " + b[pfx : pfx + mid_b]
    if pfx + sfx:
        out += b"}" + a[len_a - sfx :]
    return out.decode("utf-8", "surrogateescape")


def count_lines(data: bytes) -> int:
    """Lines of a file as git's diffstat counts an added or deleted one (a last line without a
    newline counts; an empty file has none)."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def shortstat(files: int, insertions: int, deletions: int) -> str:
    """git's ` N files changed, X insertions(+), Y deletions(-)`, with its singulars and its
    rule for leaving a zero count out (both kept when both are zero)."""
    if not files:
        return " 0 files changed"
    line = f" {files} file{'' if files == 1 else 's'} changed"
    if insertions or not deletions:
        line += f", {insertions} insertion{'' if insertions == 1 else 's'}(+)"
    if deletions or not insertions:
        line += f", {deletions} deletion{'' if deletions == 1 else 's'}(-)"
    return line


def _scale_linear(it: int, width: int, max_change: int) -> int:
    return 0 if not it else 1 + (it * (width - 1) // max_change)


def stat_lines(files: list[tuple[str, int, int]], width: int) -> list[str]:
    """`git diff --stat` at a `width`-column terminal for text files: (path, added, deleted)
    each, in the order given, then the shortstat line (diff.c's show_stats, binary and
    unmerged entries aside)."""
    if not files:
        return []
    names = [quote_path(path) for path, _, _ in files]
    max_len = max(len(name) for name in names)  # quoted names are ASCII: width is length
    max_change = max(added + deleted for _, added, deleted in files)
    number_width = len(str(max_change))
    width = max(width, 16 + 6 + number_width)
    graph_width = max_change
    name_width = max_len
    if name_width + number_width + 6 + graph_width > width:
        if graph_width > width * 3 // 8 - number_width - 6:
            graph_width = max(width * 3 // 8 - number_width - 6, 6)
        if name_width > width - number_width - 6 - graph_width:
            name_width = width - number_width - 6 - graph_width
        else:
            graph_width = width - number_width - 6 - name_width
    lines = []
    for name, (_, added, deleted) in zip(names, files, strict=True):
        prefix = ""
        room = name_width
        if name_width < len(name):
            prefix = "..."
            room -= 3
            name = name[len(name) - room :]
            slash = name.find("/")
            if slash >= 0:
                name = name[slash:]
        padding = max(room - len(name), 0)
        add, delete = added, deleted
        if graph_width <= max_change:
            total = _scale_linear(add + delete, graph_width, max_change)
            if total < 2 and add and delete:
                total = 2
            if add < delete:
                add = _scale_linear(add, graph_width, max_change)
                delete = total - add
            else:
                delete = _scale_linear(delete, graph_width, max_change)
                add = total - delete
        change = added + deleted
        lines.append(
            f" {prefix}{name}{' ' * padding} | {change:>{number_width}}{' ' if change else ''}"
            + "+" * add
            + "-" * delete
        )
    inserted = sum(added for _, added, _ in files)
    deleted = sum(deleted for _, _, deleted in files)
    lines.append(shortstat(len(files), inserted, deleted))
    return lines
