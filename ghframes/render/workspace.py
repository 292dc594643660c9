"""What the environment (environment.py) knows of the session's repository while it is stepped:
where it is in the commits' plans, the files' texts, the current commit's tree and index, and
the programs a command line runs off the plan.

The plan is the render's (render/commits.py): a command equal to a step of the current commit
is that step, and the environment prints what the render printed. The files are the edit
rows' texts (each commit's files as they were before it; as it left them once its `git commit`
ran) overlaid with what the environment's editor saved: a path saved with a text other than
the record's is the environment's own from then on. The tree is the planner's
(render/worktree.py), learnt from each commit's recorded folder listings and changed by every
command run, on the plan or off it; `git status` and `git diff --stat` off the plan are
computed from it as the planner computes them for the plan.
"""

from __future__ import annotations

import hashlib

import pygit2

from ghframes.render.commits import Step
from ghframes.render.shell import coloured, commit_subject, ls_lines, status_lines, visible
from ghframes.render.terminal import COLS
from ghframes.render.worktree import Worktree, split
from ghframes.store.gittext import shortstat, stat_lines


def normal(path: str) -> str:
    """A path as the repository names it: no `./`, no trailing or doubled `/` ("." the root)."""
    parts = [p for p in path.split("/") if p and p != "."]
    return "/".join(parts) or "."


def _line_stats(before: str, after: str) -> tuple[int, int]:
    """(lines added, lines removed) from `before` to `after`, as git counts them."""
    _, added, removed = pygit2.Patch.create_from(
        before.encode(), after.encode(), context_lines=0
    ).line_stats
    return added, removed


class Workspace:
    """The session's commits (`commits`: their edit rows), their plans' `steps` ((commit
    position, Step) in the render's order, commit k's from `starts[k]`), the position in them
    (`commit`, `script`: the next step) and the files (`texts`: path -> text)."""

    def __init__(
        self,
        commits: list[list[dict]],
        steps: list[tuple[int, Step]],
        starts: list[int],
        color: bool,
        name: str,
    ) -> None:
        self.commits, self.steps, self.starts = commits, steps, starts
        self.color = color
        self.name = name  # seeds the ids of commits made past the recorded ones
        self.texts: dict[str, str] = {}
        self.own: set[str] = set()  # paths whose text the environment's saves set
        self.made = 0  # commits made past the recorded ones
        self.enter_commit(0)

    # -- the plan

    def scripted(self, command: str) -> int | None:
        """The step of the current commit's plan typed as `command`, the next one or a later
        one (a person who skipped a step goes on with the ones after it), if any."""
        if self.commit >= len(self.commits):
            return None
        for j in range(self.script, self.starts[self.commit + 1]):
            if self.steps[j][1].command == command:
                return j
        return None

    def is_commit(self, j: int) -> bool:
        """Whether step j is its commit's closing `git commit`."""
        return j == self.starts[self.steps[j][0] + 1] - 1

    def output(self, step: Step) -> list[str]:
        """What the render printed for `step`, in its colours."""
        return coloured(step.command, step.output) if self.color else step.output

    def open_text(self, j: int) -> tuple[str, str]:
        """(the text `edit` opens, the text the record saves) of plan step j, an edit."""
        k, step = self.steps[j]
        if step.path not in self.own:
            self.texts[step.path] = step.before
        return self.texts[step.path], self.commits[k][step.change]["after"] or ""

    # -- commits

    def enter_commit(self, k: int) -> None:
        """Commit k's commands begin: its folders as the crawl recorded them, its files as they
        were before it (but those the environment saved)."""
        self.commit = k
        recorded = k < len(self.commits)
        self.script = self.starts[k] if recorded else len(self.steps)
        self.tree = Worktree()
        for row in self.commits[k] if recorded else []:
            self.tree.know(split(row["path"])[0], row.get("listing"))
            source = row["path"]
            if row["status"] == "renamed":
                source = row["old_path"] or source
            if row["before"] is not None and source not in self.own:
                self.texts[source] = row["before"]
        self.head = dict(self.texts)  # the files as the commit's parent holds them

    def finish_commit(self) -> None:
        """The current commit is made: its files as it left them; the next one begins."""
        recorded = self.commit < len(self.commits)
        for row in self.commits[self.commit] if recorded else []:
            path, old = row["path"], row["old_path"]
            if row["status"] == "renamed" and old and old not in self.own:
                self.texts.pop(old, None)
            if path in self.own:
                continue
            if row["after"] is None:
                self.texts.pop(path, None)
            else:
                self.texts[path] = row["after"]
        self.enter_commit(min(self.commit + 1, len(self.commits)))

    def saved(self, path: str, text: str, after: str | None) -> None:
        """The editor wrote `text` to `path`; `after`: the text the record saves there (None:
        the file was opened off the plan)."""
        self.texts[path] = text
        if text == after:
            self.own.discard(path)
        else:
            self.own.add(path)
        tree, head = self.tree, self.head
        if path not in head:
            self._create(path)
        elif text == head[path]:
            tree.unstaged.pop(path, None)
        elif path not in tree.staged:
            tree.modify(path, head[path], text)

    # -- programs

    def run(self, name: str, args: list[str]) -> list[str] | None:
        """Run program `name` (not `edit` or `exit`): its output lines as the terminal may show
        them (`visible`, in git's colours); None when the machine has no such program."""
        programs = {
            "echo": lambda args: [" ".join(args)],
            "git": self._git,
            "ls": self._ls,
            "touch": self._touch,
            "mkdir": self._mkdir,
            "chmod": self._chmod,
        }
        program = programs.get(name)
        if program is None:
            return None
        lines = [visible(part) for line in program(args) for part in line.split("\n")]
        command = " ".join(["git", *args])
        if name == "git" and self.color and command in ("git status", "git diff --stat"):
            lines = coloured(command, lines)
        return lines

    def exists(self, path: str) -> bool:
        folder, name = split(path)
        return path in self.texts or name in self.tree.disk.get(folder, ())

    def _create(self, path: str) -> None:
        self.tree.create(path)
        if path not in self.tree.untracked and path not in self.tree.staged:
            self.tree.untracked.append(path)

    def _ls(self, args: list[str]) -> list[str]:
        lines: list[str] = []
        for target in [a for a in args if not a.startswith("-")] or ["."]:
            folder = normal(target)
            folder = "" if folder == "." else folder
            names = set(self.tree.disk.get(folder, ()))
            prefix = f"{folder}/" if folder else ""
            names.update(
                path[len(prefix) :].split("/", 1)[0]
                for path in self.texts
                if path.startswith(prefix)
            )
            if not names and folder:
                missing = f"ls: cannot access '{target}': No such file or directory"
                lines.append(target if self.exists(folder) else missing)
                continue
            listed = ls_lines(sorted(names), COLS)
            lines.extend(listed if listed is not None else sorted(names))
        return lines

    def _touch(self, args: list[str]) -> list[str]:
        for path in (normal(a) for a in args if not a.startswith("-")):
            if not self.exists(path):
                self.texts[path] = ""
                self._create(path)
        return [] if args else ["touch: missing file operand"]

    def _mkdir(self, args: list[str]) -> list[str]:
        folders = [normal(a) for a in args if not a.startswith("-")]
        for folder in folders:
            self.tree.mkdir(folder)
        return [] if folders else ["mkdir: missing operand"]

    def _chmod(self, args: list[str]) -> list[str]:
        if len(args) < 2:
            return ["chmod: missing operand"]
        return [
            f"chmod: cannot access '{path}': No such file or directory"
            for path in args[1:]
            if not self.exists(normal(path))
        ]

    def _git(self, args: list[str]) -> list[str]:
        if not args:
            return ["usage: git [--version] [--help] [-C <path>] <command> [<args>]"]
        sub, rest = args[0], args[1:]
        paths = [normal(a) for a in rest if not a.startswith("-")]
        if sub in ("add", "rm"):
            missing = [p for p in paths if not self.exists(p)]
            if missing:
                return [f"fatal: pathspec '{missing[0]}' did not match any files"]
            if not paths:
                return ["Nothing specified, nothing added."]
            return self._add(paths) if sub == "add" else self._rm(paths, quiet="-q" in rest)
        if sub == "mv":
            if len(paths) != 2:
                return ["usage: git mv [<options>] <source>... <destination>"]
            old, new = paths
            if not self.exists(old):
                return [f"fatal: bad source, source={old}, destination={new}"]
            if old in self.texts:
                self.texts[new] = self.texts.pop(old)
            self.tree.move(old, new)
            return []
        if sub == "status":
            return self._status()
        if sub == "diff":
            return self._diff_stat() if "--stat" in rest else self._diff()
        if sub == "commit":
            return self._commit(rest)
        return [f"git: '{sub}' is not a git command. See 'git --help'."]

    def _add(self, paths: list[str]) -> list[str]:
        tree = self.tree
        for path in paths:
            if path in tree.untracked:
                tree.untracked.remove(path)
                tree.add(path)
            elif path in tree.unstaged:
                del tree.unstaged[path]
                tree.staged[path] = ("M", None)
        return []

    def _rm(self, paths: list[str], quiet: bool) -> list[str]:
        tree = self.tree
        for path in paths:
            self.texts.pop(path, None)
            tree.unstaged.pop(path, None)
            if path in tree.untracked:
                tree.untracked.remove(path)
            tree.remove(path)
        return [] if quiet else [f"rm '{p}'" for p in paths]

    def _branch(self) -> str:
        k = min(self.commit, len(self.commits) - 1)
        return self.commits[k][0].get("branch") or "main"

    def _status(self) -> list[str]:
        tree = self.tree
        initial = self.commit == 0 and self.commits[0][0]["parent"] is None
        unstaged = dict.fromkeys(tree.unstaged, "M")
        return status_lines(self._branch(), initial, tree.staged, unstaged, tree.untracked)

    def _diff_stat(self) -> list[str]:
        files = [
            (path, *_line_stats(*self.tree.unstaged[path])) for path in sorted(self.tree.unstaged)
        ]
        return stat_lines(files, COLS)

    def _diff(self) -> list[str]:
        lines: list[str] = []
        for path in sorted(self.tree.unstaged):
            before, after = self.tree.unstaged[path]
            patch = pygit2.Patch.create_from(
                before.encode(), after.encode(), old_as_path=path, new_as_path=path
            )
            lines.extend(patch.text.splitlines())
        return lines

    def _commit(self, args: list[str]) -> list[str]:
        """`git commit [-a] -m MSG` (or `-am MSG`): the recorded commit's first line with MSG's
        subject and its recorded summary; past the recorded commits, an id from a hash and the
        summary counted from the tree."""
        message, everything, i = None, False, 0
        while i < len(args):
            arg = args[i]
            if arg in ("-a", "--all"):
                everything = True
            elif arg in ("-m", "-am", "--message") and i + 1 < len(args):
                everything = everything or arg == "-am"
                message = args[i + 1]
                i += 1
            elif arg.startswith("--message="):
                message = arg.split("=", 1)[1]
            i += 1
        tree = self.tree
        if not message or not message.strip():
            return ["Aborting commit due to empty commit message."]
        if not (tree.staged or (everything and tree.unstaged)):
            return self._status()
        if self.commit < len(self.commits):
            first = self.commits[self.commit][0]
            summary = self.steps[self.starts[self.commit + 1] - 1][1].output[1:]
            commit, root = first["commit"], " (root-commit)" if first["parent"] is None else ""
        else:
            counts = [_line_stats(*texts) for texts in tree.unstaged.values()] if everything else []
            files = len(tree.staged) + len(counts)
            summary = [shortstat(files, sum(a for a, _ in counts), sum(r for _, r in counts))]
            self.made += 1
            commit = hashlib.sha1(f"{self.name}:{self.made}:{message}".encode()).hexdigest()
            root = ""
        first_line = f"[{self._branch()}{root} {commit[:7]}] {commit_subject(message)}"
        self.finish_commit()
        return [first_line, *summary]
