"""The session's working tree and index while one commit's commands play, as far as its edit
rows tell: what `mkdir -p`, `ls`, `git status` and `git diff --stat` need to be true.

Folders are known from the crawl's `listing` (the parent tree's entries of a row's folder) and
`new_dir` (a row's folder the parent tree lacked). Every command of the plan is applied here
as the real one acts: `git rm` deletes empty folders it leaves (git's own behaviour), `git mv`
leaves them; a folder whose entries were never recorded is assumed to keep its content.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def split(path: str) -> tuple[str, str]:
    """(folder, name) of a `/`-separated path; the root folder is ""."""
    folder, _, name = path.rpartition("/")
    return folder, name


def ancestors(folder: str) -> list[str]:
    """`folder` and every folder above it, the root ("") excluded, deepest first."""
    chain = []
    while folder:
        chain.append(folder)
        folder = split(folder)[0]
    return chain


@dataclass
class Worktree:
    """What one commit's commands have done so far."""

    disk: dict[str, set[str]] = field(default_factory=dict)  # folder -> names on disk
    index: dict[str, set[str]] = field(default_factory=dict)  # folder -> names with tracked content
    gone: set[str] = field(default_factory=set)  # folders `git rm` deleted
    made: set[str] = field(default_factory=set)  # folders `mkdir -p` made
    touched: set[str] = field(default_factory=set)  # folders holding a path a command touched
    # git's view: staged path -> (A, D or R, renamed from); unstaged path -> (before, after)
    staged: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    unstaged: dict[str, tuple[str, str]] = field(default_factory=dict)
    untracked: list[str] = field(default_factory=list)

    def know(self, folder: str, listing: list[str] | None) -> None:
        """Learn a folder's entries in the parent tree (before any command of the commit)."""
        if listing is not None and folder not in self.disk and folder not in self.touched:
            self.disk[folder] = set(listing)
            self.index[folder] = set(listing)

    def untouched(self, folder: str) -> bool:
        """Whether no command of the commit has changed anything in or below `folder`."""
        return folder not in self.touched

    def _touch(self, path: str) -> None:
        folder = split(path)[0]
        self.touched.update(ancestors(folder))
        self.touched.add("")

    def mkdir_target(self, folder: str, new_dir: str | None) -> str | None:
        """The folder `mkdir -p` must make before a file lands in `folder`, or None: the row's
        `new_dir` unless a `mkdir -p` of it or of a folder below it ran already, or the
        folder if this commit's `git rm` deleted it (or a folder above it)."""
        if new_dir:
            covered = any(m == new_dir or m.startswith(new_dir + "/") for m in self.made)
            if not covered or any(a in self.gone for a in ancestors(new_dir)):
                return new_dir
            return None
        if any(a in self.gone for a in ancestors(folder)):
            return folder
        return None

    def mkdir(self, folder: str) -> None:
        """`mkdir -p folder`: it and any folder above it that was missing exist, empty."""
        self.made.add(folder)
        if folder not in self.disk:  # a new folder (the row's `new_dir`)
            self.disk[folder] = set()
            self.index[folder] = set()
        for a in ancestors(folder):
            if a in self.gone:
                self.gone.discard(a)
                self.disk[a] = set()
                self.index[a] = set()
            parent, name = split(a)
            if parent in self.disk:
                self.disk[parent].add(name)
        self.touched.update(ancestors(folder))
        self.touched.add("")

    def create(self, path: str) -> None:
        """A new file written (`touch`, the editor's save)."""
        folder, name = split(path)
        if folder in self.disk:
            self.disk[folder].add(name)
        self._touch(path)

    def add(self, path: str) -> None:
        """`git add` of a new file."""
        folder, name = split(path)
        if folder in self.index:
            self.index[folder].add(name)
        self.staged[path] = ("A", None)

    def remove(self, path: str) -> None:
        """`git rm`: the file leaves the index and the disk, and so do folders left empty."""
        folder, name = split(path)
        self._drop(self.disk, folder, name, deletes_folders=True)
        self._drop(self.index, folder, name)
        self.staged[path] = ("D", None)
        self._touch(path)

    def move(self, old: str, new: str) -> None:
        """`git mv`: the file changes folder; the folder it left stays on disk."""
        folder, name = split(old)
        if folder in self.disk:
            self.disk[folder].discard(name)
        self._drop(self.index, folder, name)
        new_folder, new_name = split(new)
        for names in (self.disk, self.index):
            if new_folder in names:
                names[new_folder].add(new_name)
        self.staged[new] = ("R", old)
        self._touch(old)
        self._touch(new)

    def modify(self, path: str, before: str, after: str) -> None:
        """An edit or a mode change of a tracked file, not staged."""
        self.unstaged[path] = (before, after)
        self._touch(path)

    def _drop(self, names: dict, folder: str, name: str, deletes_folders: bool = False) -> None:
        """`name` leaves `folder`; a folder left empty leaves its parent in turn."""
        while folder in names:
            names[folder].discard(name)
            if names[folder] or not folder:
                return
            if deletes_folders:
                self.gone.add(folder)
            folder, name = split(folder)

    def keeps_tracked(self, folder: str) -> bool:
        """Whether `folder` still holds tracked content (git status then lists a new file in it
        by its path, not the folder): the root always, a folder never recorded presumably."""
        if not folder:
            return True
        if folder in self.gone or any(a in self.gone for a in ancestors(folder)):
            return False
        return bool(self.index.get(folder, True))
