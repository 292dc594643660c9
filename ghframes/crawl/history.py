"""History mining: the first-parent history of a branch as edit rows, one per changed text file.

A merge is diffed against its first parent, renames are detected as git detects them
(gitdiff.py), and every change that cannot become an exact text row (binary, not UTF-8, too
large, vendored, LFS pointer, submodule, symlink) is counted by reason instead. Each row also
carries what the shell around the edit needs from the repository: the branch, the summary
`git commit` printed for the whole commit (skipped files included), whether the file's folder
is new, and what that folder held before.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pygit2
from pygit2.enums import SortMode

from ghframes.crawl import gitdiff
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
BINARY_PROBE_BYTES = gitdiff.BINARY_PROBE_BYTES  # git's own test: a NUL in the first 8,000
# A folder's entries are recorded (`listing`) up to this many; `ls` of a larger one is not shown.
LISTING_MAX = 100

STATUS = {
    "A": "added",
    "M": "modified",
    "D": "deleted",
    "R": "renamed",
    # A file that changed kind (file <-> symlink, submodule): its non-file side skips it.
    "T": "modified",
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


def head_branch(repo: pygit2.Repository, default_branch: str | None = None) -> str | None:
    """The branch the crawl walks, named as `git commit` names it (`main`): the source's
    default branch if it names one (crawl/sources.py: default_head), else HEAD's; None when
    HEAD is detached."""
    if default_branch:
        return default_branch
    if repo.head_is_unborn or repo.head_is_detached:
        return None
    return repo.head.name.removeprefix("refs/heads/")


class _ParentFolders:
    """What the parent commit's tree holds in each folder (cached per commit)."""

    def __init__(self, tree: pygit2.Tree | None) -> None:
        self.tree = tree
        self._exists: dict[str, bool] = {}
        self._listing: dict[str, list[str] | None] = {}

    def _tree(self, folder: str) -> pygit2.Tree | None:
        node = self.tree
        if node is not None and folder:
            try:
                node = node[folder]
            except KeyError:
                return None
        return node if isinstance(node, pygit2.Tree) else None

    def exists(self, folder: str) -> bool:
        """Whether `folder` is a folder of the parent tree."""
        if folder not in self._exists:
            self._exists[folder] = self._tree(folder) is not None
        return self._exists[folder]

    def listing(self, folder: str) -> list[str] | None:
        """The folder's entry names in code point order (as `ls` sorts in C.UTF-8), or None
        when it is not a folder of the parent tree, holds more than LISTING_MAX entries or a
        name that is not UTF-8."""
        if folder not in self._listing:
            tree = self._tree(folder)
            names = None
            if tree is not None and len(tree) <= LISTING_MAX:
                names = sorted(entry.name for entry in tree)
                if not all(_is_utf8(name) for name in names):
                    names = None
            self._exists[folder] = tree is not None
            self._listing[folder] = names
        return self._listing[folder]


def _skip_reason(
    blobs: gitdiff.Blobs, path: str, side: gitdiff.Side, max_bytes: int
) -> tuple[str | None, str | None]:
    """(reason, None) if this side of a change cannot be a text row, else (None, its text)."""
    if side.mode == gitdiff.GITLINK:
        return "submodule", None
    if side.mode == gitdiff.SYMLINK:
        return "symlink", None
    if is_vendored(path):
        return "vendored", None
    if blobs.size(side) > max_bytes:
        return "too_large", None
    data = blobs.data(side)
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
    branch: str | None = None,
) -> Iterator[Batch]:
    """Edit rows for `commits` (consecutive on the first-parent chain), in batches of whole commits.

    `first_index` is the `commit_index` of `commits[0]`. A batch is yielded once its text reaches
    `batch_bytes`, so memory stays bounded on huge histories. `on_commits(n)`, if given, hears
    of every PROGRESS_EVERY commits diffed (for progress bars). `branch` is recorded in every
    row (`head_branch`; None: a detached HEAD).
    """
    batch = Batch()
    for offset, commit in enumerate(commits):
        if on_commits is not None and offset and offset % PROGRESS_EVERY == 0:
            on_commits(PROGRESS_EVERY)
        parent = commit.parents[0] if commit.parents else None
        blobs = gitdiff.Blobs(repo)
        queue = gitdiff.changes(gitdiff.first_parent_diff(repo, commit, parent), blobs)
        rows = []
        for change in queue:
            status = STATUS[change.status]
            old, new = change.old, change.new
            before = after = None
            reason = None
            if not all(_is_utf8(side.path) for side in (old, new) if side is not None):
                reason = "path_not_utf8"  # no text column can hold it, nor a terminal show it
            elif old is not None:
                reason, before = _skip_reason(blobs, old.path, old, max_file_bytes)
            if reason is None and new is not None:
                reason, after = _skip_reason(blobs, new.path, new, max_file_bytes)
            if reason is not None:
                stats.skipped[reason] += 1
                continue
            path = (new or old).path
            rows.append(
                (
                    path,
                    old.path if status == "renamed" else None,
                    status,
                    int((new or old).mode),
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
        summary = gitdiff.summary(queue, blobs)
        folders = _ParentFolders(parent.tree if parent else None)
        cols = batch.columns
        for path, old_path, status, mode, before, after in rows:
            folder = path.rpartition("/")[0]
            new_dir = None
            if status in ("added", "renamed") and folder and not folders.exists(folder):
                new_dir = folder
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
            cols["branch"].append(branch)
            cols["summary"].append(summary)
            cols["new_dir"].append(new_dir)
            cols["listing"].append(folders.listing(folder))
            batch.text_bytes += len(before or "") + len(after or "")
        stats.changes += len(rows)
        if batch.text_bytes >= batch_bytes:
            yield batch
            batch = Batch()
    if batch.num_commits:
        yield batch
