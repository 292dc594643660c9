"""A commit's changes as git sees them: git's own rename detection and the summary `git commit`
prints (` N files changed, …`, ` create mode …`, ` rename a => b (NN%)`, ` mode change …`).

libgit2 (pygit2's `Diff.find_similar`) scores renames with its own signatures, so its
percentages, and near the 50% threshold its pairs, differ from git's; and its
`DiffStatsFormat.INCLUDE_SUMMARY` leaves renames out and folds `{a => b}` differently. So the
tree diff comes from libgit2 without rename detection, and the pairing, the scores and the
lines follow git 2.39's diffcore-rename.c, diffcore-delta.c and diff.c: exact renames by
object id (a same-named source first), then unique basenames at 75% similarity, then every
remaining pair at 50%, best first, four candidates per destination, within git's default
rename limit. Skipped .gitattributes (binary, diff drivers) are not read: git's own content
test (a NUL byte in the first 8,000 bytes) decides what is binary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pygit2
from pygit2.enums import DiffOption, FileMode

from ghframes.store import gittext

MAX_SCORE = gittext.MAX_SCORE
MIN_RENAME_SCORE = 30000  # git's default -M50%
MIN_BASENAME_SCORE = MIN_RENAME_SCORE + int(0.5 * (MAX_SCORE - MIN_RENAME_SCORE))  # 75%
RENAME_LIMIT = 1000  # git's diff.renameLimit default: no inexact search past 1000 x 1000
CANDIDATES_PER_DESTINATION = 4
BINARY_PROBE_BYTES = 8000  # git's buffer_is_binary: a NUL byte in the first 8,000 bytes
BIG_FILE_BYTES = 512 << 20  # core.bigFileThreshold: larger blobs count as binary
SPAN_BYTES = 64  # diffcore-delta.c hashes spans of a line, at most 64 bytes each
HASHBASE = 107927


@dataclass
class Change:
    """One entry of git's diff queue: A, D, M, T (a file's kind changed) or R (renamed)."""

    status: str
    old: Side | None  # None for A
    new: Side | None  # None for D
    score: int = 0  # rename similarity, 0 to MAX_SCORE

    @property
    def similarity(self) -> int:
        """The percentage git prints after a rename."""
        return int(self.score * 100 / MAX_SCORE)


def first_parent_diff(
    repo: pygit2.Repository, commit: pygit2.Commit, parent: pygit2.Commit | None = None
) -> pygit2.Diff:
    """The commit's tree diff against its first parent (`parent`, if given: the empty tree for
    a root), without rename detection (`changes` does it); a typechange stays one entry, as in
    git."""
    flags = DiffOption.INCLUDE_TYPECHANGE
    if parent is None and commit.parents:
        parent = commit.parents[0]
    if parent is None:
        return commit.tree.diff_to_tree(swap=True, flags=flags)
    return parent.tree.diff_to_tree(commit.tree, flags=flags)


def _is_regular(mode: int) -> bool:
    return mode & 0o170000 == 0o100000


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _basename_same(a: str, b: str) -> bool:
    return _basename(a) == _basename(b)


GITLINK = int(FileMode.COMMIT)
SYMLINK = int(FileMode.LINK)


class Side:
    """One side of a change: what a pygit2.DiffFile says, read once (its attributes are
    computed on every access)."""

    __slots__ = ("path", "mode", "id")

    def __init__(self, file: pygit2.DiffFile) -> None:
        self.path: str = file.path
        self.mode: int = int(file.mode)
        self.id: pygit2.Oid = file.id


class Blobs:
    """The content git diffs for each side of a change, read once per commit."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self._blobs: dict[pygit2.Oid, pygit2.Blob] = {}
        self._data: dict[pygit2.Oid, bytes] = {}
        self._binary: dict[pygit2.Oid, bool] = {}
        self._spans: dict[pygit2.Oid, tuple[np.ndarray, np.ndarray]] = {}

    def data(self, side: Side) -> bytes:
        data = self._data.get(side.id)
        if data is None:
            if side.mode == GITLINK:  # a submodule: git diffs its "Subproject commit" line
                data = f"Subproject commit {side.id}\n".encode()
            else:
                blob = self._blobs[side.id] = self.repo[side.id]
                data = blob.data
            self._data[side.id] = data
        return data

    def blob(self, side: Side) -> pygit2.Blob | bytes:
        """What libgit2 diffs: the blob itself (no copy), or a submodule's line."""
        if side.mode == GITLINK:
            return self.data(side)
        if side.id not in self._blobs:
            self.data(side)
        return self._blobs[side.id]

    def size(self, side: Side) -> int:
        if side.id in self._data or side.mode == GITLINK:
            return len(self.data(side))
        return self.repo.odb.read_header(side.id)[1]

    def is_binary(self, side: Side) -> bool:
        binary = self._binary.get(side.id)
        if binary is None:
            if side.mode != GITLINK and self.size(side) > BIG_FILE_BYTES:
                binary = True
            else:
                binary = b"\0" in self.data(side)[:BINARY_PROBE_BYTES]
            self._binary[side.id] = binary
        return binary

    def spans(self, side: Side) -> tuple[np.ndarray, np.ndarray]:
        found = self._spans.get(side.id)
        if found is None:
            found = self._spans[side.id] = span_hashes(self.data(side), not self.is_binary(side))
        return found


def span_hashes(data: bytes, is_text: bool) -> tuple[np.ndarray, np.ndarray]:
    """diffcore-delta.c's hash_chars: (sorted span hashes uint32 [K], bytes per hash int64 [K]).

    A span ends after a newline or 64 bytes; a last span without its newline that is shorter
    than 64 bytes is not counted (as in git). CR of CRLF is skipped in text.
    """
    if is_text:
        data = data.replace(b"\r\n", b"\n")
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    starts = np.concatenate(([0], ends[:-1])) if len(ends) else np.zeros(0, np.int64)
    lengths = ends - starts
    tail = len(buf) - (int(ends[-1]) if len(ends) else 0)
    # A line longer than 64 bytes is several spans: 64, 64, …, the rest.
    pieces = np.maximum((lengths + SPAN_BYTES - 1) // SPAN_BYTES, 1)
    first = np.repeat(starts, pieces)
    k = np.arange(len(first)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    span_start = first + k * SPAN_BYTES
    span_len = np.minimum(np.repeat(lengths, pieces) - k * SPAN_BYTES, SPAN_BYTES)
    if tail >= SPAN_BYTES:
        extra = np.arange(tail // SPAN_BYTES) * SPAN_BYTES + (len(buf) - tail)
        span_start = np.concatenate((span_start, extra))
        span_len = np.concatenate((span_len, np.full(len(extra), SPAN_BYTES)))
    if not len(span_start):
        return np.zeros(0, np.uint32), np.zeros(0, np.int64)
    order = np.argsort(-span_len, kind="stable")  # longest first: step k works on a prefix
    span_start, span_len = span_start[order], span_len[order]
    active = np.searchsorted(-span_len, -np.arange(1, SPAN_BYTES + 1), side="right")
    a1 = np.zeros(len(span_start), np.uint32)
    a2 = np.zeros(len(span_start), np.uint32)
    seven, twentyfive = np.uint32(7), np.uint32(25)
    for step in range(int(span_len[0])):
        n = active[step]
        x1, x2 = a1[:n], a2[:n]
        new1 = (x1 << seven) ^ (x2 >> twentyfive)
        new2 = (x2 << seven) ^ (x1 >> twentyfive)
        a1[:n] = new1 + buf[span_start[:n] + step].astype(np.uint32)
        a2[:n] = new2
    hashes = (a1 + a2 * np.uint32(0x61)) % np.uint32(HASHBASE)
    values, inverse = np.unique(hashes, return_inverse=True)
    counts = np.bincount(inverse, weights=span_len).astype(np.int64)
    return values, counts


def _similarity(blobs: Blobs, src: Side, dst: Side, minimum: int) -> int:
    """diffcore-rename.c's estimate_similarity: how much of the larger file came from `src`."""
    if not (_is_regular(src.mode) and _is_regular(dst.mode)):
        return 0
    src_size, dst_size = blobs.size(src), blobs.size(dst)
    max_size, base_size = max(src_size, dst_size), min(src_size, dst_size)
    if max_size * (MAX_SCORE - minimum) < (max_size - base_size) * MAX_SCORE:
        return 0
    if not dst_size:
        return 0
    src_hash, src_count = blobs.spans(src)
    dst_hash, dst_count = blobs.spans(dst)
    _, i, j = np.intersect1d(src_hash, dst_hash, assume_unique=True, return_indices=True)
    copied = int(np.minimum(src_count[i], dst_count[j]).sum())
    return int(copied * MAX_SCORE / max_size)


def _worse(a: tuple | None, b: tuple | None) -> bool:
    """score_compare(a, b) > 0: `a` sorts after `b` (an empty slot after any candidate)."""
    if a is None:
        return b is not None
    if b is None:
        return False
    return (a[0], a[1]) < (b[0], b[1])  # (score, same basename): higher first


def changes(diff: pygit2.Diff, blobs: Blobs) -> list[Change]:
    """The diff queue of a tree diff (made without rename detection), renames paired as git
    pairs them, in git's order: by path, a rename where its new path sorts."""
    queue: list[Change] = []
    for delta in diff.deltas:
        status = delta.status_char()
        if status not in "ADMT":
            continue  # unmodified and ignored entries do not occur in a tree diff
        queue.append(
            Change(
                status,
                None if status == "A" else Side(delta.old_file),
                None if status == "D" else Side(delta.new_file),
            )
        )
    dsts = [i for i, c in enumerate(queue) if c.status == "A"]
    srcs = [i for i, c in enumerate(queue) if c.status == "D"]
    paired: dict[int, tuple[int, int]] = {}  # destination -> (source, score)
    used: set[int] = set()
    if dsts and srcs:
        _exact(queue, dsts, srcs, paired, used)
        srcs = [s for s in srcs if s not in used]
        _by_basename(queue, dsts, srcs, paired, used, blobs)
        srcs = [s for s in srcs if s not in used]
        left = [d for d in dsts if d not in paired]
        if left and srcs and len(left) * len(srcs) <= RENAME_LIMIT * RENAME_LIMIT:
            _inexact(queue, left, srcs, paired, used, blobs)
    out = []
    for i, change in enumerate(queue):
        if i in paired:
            source, score = paired[i]
            out.append(Change("R", queue[source].old, change.new, score))
        elif i not in used:
            out.append(change)
    return out


def _exact(queue, dsts, srcs, paired, used) -> None:
    by_id: dict[pygit2.Oid, list[int]] = {}
    for s in srcs:
        by_id.setdefault(queue[s].old.id, []).append(s)
    for d in dsts:
        target = queue[d].new
        best, best_score, tries = None, -1, 100
        for s in by_id.get(target.id, ()):
            source = queue[s].old
            # Symlinks and submodules are renamed only to their own kind.
            regular = _is_regular(source.mode) and _is_regular(target.mode)
            if (not regular and source.mode != target.mode) or s in used:
                continue
            score = 1 + _basename_same(source.path, target.path)
            if score > best_score:
                best, best_score = s, score
                if score == 2:
                    break
            tries -= 1
            if not tries:
                break
        if best is not None:
            paired[d] = (best, int(MAX_SCORE))
            used.add(best)


def _by_basename(queue, dsts, srcs, paired, used, blobs) -> None:
    """Sources and destinations whose basename is unique on each side are tried first."""
    sources: dict[str, int] = {}
    for s in srcs:
        base = _basename(queue[s].old.path)
        sources[base] = -1 if base in sources else s
    dests: dict[str, int] = {}
    for d in dsts:
        if d in paired:
            continue
        base = _basename(queue[d].new.path)
        dests[base] = -1 if base in dests else d
    for s in srcs:
        base = _basename(queue[s].old.path)
        d = dests.get(base)
        if d is None or d == -1 or sources[base] == -1 or d in paired:
            continue
        score = _similarity(blobs, queue[s].old, queue[d].new, MIN_BASENAME_SCORE)
        if score >= MIN_BASENAME_SCORE:
            paired[d] = (s, score)
            used.add(s)


def _inexact(queue, dsts, srcs, paired, used, blobs) -> None:
    """Every remaining destination scored against every remaining source; the best four
    sources of each kept (record_if_better's slots, in their order), then all of them tried
    best first. Scores are computed a destination at a time, against all sources at once."""
    ones = [queue[s].old for s in srcs]
    sizes = np.array([blobs.size(o) for o in ones], dtype=np.int64)
    bases = [_basename(o.path) for o in ones]
    regular = np.array([_is_regular(o.mode) for o in ones], dtype=bool)
    twos = [queue[d].new for d in dsts]
    dst_sizes = np.array([blobs.size(t) for t in twos], dtype=np.int64)
    # estimate_similarity's size test: the smaller file is at least half the larger one.
    big = np.maximum(sizes[None, :], dst_sizes[:, None])
    small = np.minimum(sizes[None, :], dst_sizes[:, None])
    passes = ~(big * (MAX_SCORE - MIN_RENAME_SCORE) < (big - small) * MAX_SCORE)
    passes &= regular[None, :] & np.array([_is_regular(t.mode) for t in twos])[:, None]
    passes &= dst_sizes[:, None] > 0
    hashed = np.flatnonzero(passes.any(axis=0))  # only sources some destination may take
    spans = [blobs.spans(ones[j]) for j in hashed]
    table_hash = np.concatenate([h for h, _ in spans] or [np.zeros(0, np.uint32)])
    table_count = np.concatenate([c for _, c in spans] or [np.zeros(0, np.int64)])
    table_source = np.repeat(hashed, [len(h) for h, _ in spans]).astype(np.int64)
    order = np.argsort(table_hash, kind="stable")
    table_hash, table_count, table_source = (
        table_hash[order],
        table_count[order],
        table_source[order],
    )
    matrix: list[tuple | None] = []
    for i, (d, two) in enumerate(zip(dsts, twos, strict=True)):
        scores = [0] * len(srcs)
        if passes[i].any():
            h, c = blobs.spans(two)
            lo = np.searchsorted(table_hash, h, "left")
            reps = np.searchsorted(table_hash, h, "right") - lo
            at = np.repeat(lo - np.cumsum(reps) + reps, reps) + np.arange(int(reps.sum()))
            copied = np.bincount(
                table_source[at],
                weights=np.minimum(table_count[at], np.repeat(c, reps)),
                minlength=len(srcs),
            )
            score = (copied * MAX_SCORE / np.maximum(sizes, dst_sizes[i])).astype(np.int64)
            scores = np.where(passes[i], score, 0).tolist()
        base = _basename(two.path)
        slots: list[tuple | None] = [None] * CANDIDATES_PER_DESTINATION
        filled, worst = 0, 0
        for j, s in enumerate(srcs):
            key = (scores[j], int(bases[j] == base))
            if filled == CANDIDATES_PER_DESTINATION and key <= slots[worst][:2]:
                continue  # no better than the worst kept: record_if_better keeps the slots
            if filled < CANDIDATES_PER_DESTINATION:
                slots[filled] = (*key, d, s)
                filled += 1
            else:
                slots[worst] = (*key, d, s)
            if filled == CANDIDATES_PER_DESTINATION:
                worst = 0
                for k in range(1, CANDIDATES_PER_DESTINATION):
                    if _worse(slots[k], slots[worst]):
                        worst = k
        matrix.extend(slots)
    matrix.sort(key=lambda c: (1, 0, 0) if c is None else (0, -c[0], -c[1]))  # stable
    for candidate in matrix:
        if candidate is None or candidate[0] < MIN_RENAME_SCORE:
            break
        score, _, d, s = candidate
        if d in paired or s in used:
            continue
        paired[d] = (s, score)
        used.add(s)


def line_counts(change: Change, blobs: Blobs) -> tuple[int, int, bool]:
    """(insertions, deletions, binary) of one change, as git's diffstat counts them."""
    old, new = change.old, change.new
    if old is None:
        if blobs.is_binary(new):
            return 0, 0, True
        return gittext.count_lines(blobs.data(new)), 0, False
    if new is None:
        if blobs.is_binary(old):
            return 0, 0, True
        return 0, gittext.count_lines(blobs.data(old)), False
    if blobs.is_binary(old) or blobs.is_binary(new):
        return 0, 0, True
    if old.id == new.id:  # a rename without edits, a mode change
        return 0, 0, False
    patch = pygit2.Patch.create_from(blobs.blob(old), blobs.blob(new), context_lines=0)
    _, insertions, deletions = patch.line_stats
    return insertions, deletions, False


def summary(queue: list[Change], blobs: Blobs) -> list[str]:
    """What `git commit` prints under its first line for these changes: the shortstat line,
    then one line per creation, deletion, rename and mode change, in the queue's order."""
    files = insertions = deletions = 0
    lines = []
    for change in queue:
        added, deleted, binary = line_counts(change, blobs)
        files += 1
        if not binary:
            insertions += added
            deletions += deleted
        old, new = change.old, change.new
        if change.status == "A":
            lines.append(f" create mode {new.mode:06o} {gittext.quote_path(new.path)}")
        elif change.status == "D":
            lines.append(f" delete mode {old.mode:06o} {gittext.quote_path(old.path)}")
        elif change.status == "R":
            name = gittext.rename_name(old.path, new.path)
            lines.append(f" rename {name} ({change.similarity}%)")
            if old.mode != new.mode:
                lines.append(f" mode change {old.mode:06o} => {new.mode:06o}")
        elif old.mode != new.mode:
            lines.append(
                f" mode change {old.mode:06o} => {new.mode:06o} {gittext.quote_path(new.path)}"
            )
    return [gittext.shortstat(files, insertions, deletions), *lines]
