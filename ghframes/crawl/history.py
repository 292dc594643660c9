"""History mining: the first-parent history of a branch as edit rows, one per changed text file.

A merge is diffed against its first parent, renames are detected, and every change that cannot
become an exact text row (binary, not UTF-8, too large, vendored, LFS pointer, submodule,
symlink) is counted by reason instead.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pygit2
from pygit2.enums import DeltaStatus, DiffFind, FileMode, SortMode

from ghframes.store import schema

# Paths whose content is vendored or generated rather than written by a person. Matched against
# the full path (`**/` prefix implied) and, for the directory patterns, any path component.
VENDORED_FILES = (
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "npm-shrinkwrap.json",
    "Cargo.lock",
    "poetry.lock",
    "Pipfile.lock",
    "uv.lock",
    "composer.lock",
    "Gemfile.lock",
    "go.sum",
    "*.min.js",
    "*.min.css",
    "*.map",
    "*.pb.go",
    "*_pb2.py",
    "*.pyc",
)
VENDORED_DIRS = ("node_modules", "vendor", "third_party", "bower_components", ".venv", "dist")
VENDORED_PATTERNS = VENDORED_FILES + tuple(f"{d}/" for d in VENDORED_DIRS)
_VENDORED_FILE_RE = re.compile("|".join(fnmatch.translate(p) for p in VENDORED_FILES))
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
PROGRESS_EVERY = 64  # commits between on_commits calls of `mine`
BINARY_PROBE_BYTES = 8000  # git's own heuristic: a NUL byte in the first 8,000 bytes

STATUS = {
    DeltaStatus.ADDED: "added",
    DeltaStatus.MODIFIED: "modified",
    DeltaStatus.DELETED: "deleted",
    DeltaStatus.RENAMED: "renamed",
    # A file that changed kind (file <-> symlink) is a modification of whichever side is a file.
    DeltaStatus.TYPECHANGE: "modified",
}
# The edits table's columns, from their one definition in schemas/edits.json.
COLUMNS = tuple(schema.load("edits").names)


def is_vendored(path: str) -> bool:
    parts = path.split("/")
    if any(part in VENDORED_DIRS for part in parts[:-1]):
        return True
    return _VENDORED_FILE_RE.match(parts[-1]) is not None


@dataclass
class Batch:
    """Edit rows of consecutive commits, column-wise (keys: `COLUMNS`)."""

    columns: dict[str, list] = field(default_factory=lambda: {c: [] for c in COLUMNS})
    first_index: int = -1
    last_commit: str = ""
    num_commits: int = 0
    text_bytes: int = 0

    @property
    def num_rows(self) -> int:
        return len(self.columns["path"])


@dataclass
class MiningStats:
    commits: int = 0
    changes: int = 0
    skipped: Counter = field(default_factory=Counter)


def first_parent_chain(
    repo: pygit2.Repository, head: pygit2.Oid, since: pygit2.Oid | None = None
) -> list[pygit2.Commit]:
    """Commits on the first-parent chain ending at `head`, oldest first, after `since` if given."""
    walker = repo.walk(head, SortMode.TOPOLOGICAL | SortMode.REVERSE)
    walker.simplify_first_parent()
    if since is not None:
        walker.hide(since)
    return list(walker)


def commits_since(
    repo: pygit2.Repository, since: pygit2.Oid, head: pygit2.Oid
) -> list[pygit2.Commit] | None:
    """The first-parent chain ending at `head` after `since`, oldest first; None unless `since`
    is on that chain (it is not when the history was rewritten, or when `since` was merely
    merged in as a later parent, which would shift every `commit_index` after it)."""
    if since == head:
        return []
    # After a rewrite and a gc, the old head may no longer exist at all.
    if since not in repo or not repo.descendant_of(head, since):
        return None
    chain = first_parent_chain(repo, head, since)
    return chain if chain and chain[0].parent_ids[:1] == [since] else None


def _is_utf8(path: str) -> bool:
    """Whether a path pygit2 decoded is UTF-8 (it keeps other bytes as lone surrogates)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _skip_reason(
    repo: pygit2.Repository, path: str, side: pygit2.DiffFile, max_bytes: int
) -> tuple[str | None, str | None]:
    """(reason, None) if this side of a change cannot be a text row, else (None, its text)."""
    if side.mode == FileMode.COMMIT:
        return "submodule", None
    if side.mode == FileMode.LINK:
        return "symlink", None
    if is_vendored(path):
        return "vendored", None
    if side.size > max_bytes:
        return "too_large", None
    data = repo[side.id].data
    if len(data) > max_bytes:  # diff sizes can be 0 when libgit2 did not load the blob
        return "too_large", None
    if b"\0" in data[:BINARY_PROBE_BYTES]:
        return "binary", None
    if data.startswith(LFS_POINTER):
        return "lfs_pointer", None
    try:
        return None, data.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8", None


def mine(
    repo: pygit2.Repository,
    repo_name: str,
    commits: list[pygit2.Commit],
    first_index: int,
    stats: MiningStats,
    max_file_bytes: int = 1 << 20,
    batch_bytes: int = 64 << 20,
    on_commits: Callable[[int], None] | None = None,
) -> Iterator[Batch]:
    """Edit rows for `commits` (consecutive on the first-parent chain), in batches of whole commits.

    `first_index` is the `commit_index` of `commits[0]`. A batch is yielded once its text reaches
    `batch_bytes`, so memory stays bounded on huge histories. `on_commits(n)`, if given, hears
    of every PROGRESS_EVERY commits diffed (for progress bars).
    """
    batch = Batch()
    for offset, commit in enumerate(commits):
        if on_commits is not None and offset and offset % PROGRESS_EVERY == 0:
            on_commits(PROGRESS_EVERY)
        parent = commit.parents[0] if commit.parents else None
        if parent is None:
            diff = commit.tree.diff_to_tree(swap=True)
        else:
            diff = repo.diff(parent.tree, commit.tree)
        diff.find_similar(flags=DiffFind.FIND_RENAMES)
        rows = []
        for delta in diff.deltas:
            status = STATUS.get(delta.status)
            if status is None:  # copies are not produced without FIND_COPIES; nothing else occurs
                continue
            old, new = delta.old_file, delta.new_file
            before = after = None
            reason = None
            if not (_is_utf8(old.path) and _is_utf8(new.path)):
                reason = "path_not_utf8"  # no text column can hold it, nor a terminal show it
            elif status != "added":
                reason, before = _skip_reason(repo, old.path, old, max_file_bytes)
            if reason is None and status != "deleted":
                reason, after = _skip_reason(repo, new.path, new, max_file_bytes)
            if reason is not None:
                stats.skipped[reason] += 1
                continue
            path = new.path if status != "deleted" else old.path
            rows.append(
                (
                    path,
                    old.path if status == "renamed" else None,
                    status,
                    int(new.mode if status != "deleted" else old.mode),
                    before,
                    after,
                )
            )
        stats.commits += 1
        if batch.num_commits == 0:
            batch.first_index = first_index + offset
        batch.num_commits += 1
        batch.last_commit = str(commit.id)
        if not rows:
            continue
        rows.sort(key=lambda r: r[0])
        message = commit.raw_message.decode("utf-8", "replace")
        cols = batch.columns
        for path, old_path, status, mode, before, after in rows:
            cols["repo"].append(repo_name)
            cols["commit"].append(str(commit.id))
            cols["parent"].append(str(parent.id) if parent else None)
            cols["commit_index"].append(first_index + offset)
            cols["author_time"].append(commit.author.time)
            cols["author_tz"].append(commit.author.offset)
            cols["message"].append(message)
            cols["path"].append(path)
            cols["old_path"].append(old_path)
            cols["status"].append(status)
            cols["mode"].append(mode)
            cols["before"].append(before)
            cols["after"].append(after)
            batch.text_bytes += len(before or "") + len(after or "")
        stats.changes += len(rows)
        if batch.text_bytes >= batch_bytes:
            yield batch
            batch = Batch()
    if batch.num_commits:
        yield batch
