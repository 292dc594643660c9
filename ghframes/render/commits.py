"""Commit plans: the shell commands and editor keys of one commit, and commits grouped into sessions.

For every change of a commit the person types a shell command (`edit PATH`, `git mv OLD NEW`,
`git rm -q PATH`, `touch PATH`, `chmod +x PATH`, `git add PATH`), first `mkdir -p DIR` where
the file lands in a folder that does not exist yet, works in the editor when the file's text
changes, then commits with the message's first line (`git commit -am '…'`), and git answers
with what it printed for that commit (the crawl recorded it). Now and then the person lists a
folder before changing a file in it (`ls`), and looks at `git status` and `git diff --stat`
before committing (leaving new files untracked until after `git status`); their output is
computed from the state the commands left (worktree.py), never invented. A plan depends only
on the commit's edit rows and the options, so the pipeline can count a commit's frames without
drawing them and start a session at any commit.

Edits of schema 1.0 carry no branch, summary or folders: their commits are planned as before
these were recorded (no `mkdir`, `ls`, `git status`, `git diff --stat`; the summary computed
from the rendered changes, on branch `main`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pygit2

from ghframes.render.mechanical import change_reason, commit_reason
from ghframes.render.replay import git_lines
from ghframes.render.seeding import rng_for
from ghframes.render.shell import (
    commit_subject,
    ls_lines,
    shell_word,
    shown_path,
    status_lines,
    visible,
)
from ghframes.render.terminal import COLS
from ghframes.render.typed import TypedEdit
from ghframes.render.typist import person_for
from ghframes.render.worktree import Worktree, split
from ghframes.store.gittext import shortstat, stat_lines
from ghframes.store.identity import without_location

if TYPE_CHECKING:  # for annotations only: session.py, which defines it, imports this module
    from ghframes.render.session import RenderOptions

# How often the person looks around (per commit, drawn from the commit's seed): `ls` of a
# folder before changing a file in it, `git status` and `git diff --stat` before committing.
LS_PROBABILITY = 0.12
STATUS_PROBABILITY = 0.15
DIFF_STAT_PROBABILITY = 0.10
MAX_OUTPUT_LINES = 40  # a longer `ls`, `git status` or `git diff --stat` is not run


@dataclass
class Step:
    """One shell command; with `edit`, it opens the editor on `before` and plays the plan."""

    command: str
    output: list[str] = field(default_factory=list)
    edit: TypedEdit | None = None
    before: str | None = None
    path: str = ""
    change: int | None = None  # index into CommitPlan.changes of the change it renders

    @property
    def num_actions(self) -> int:
        n = len(self.command) + 1  # the command's characters and <Enter>
        if self.edit is not None:
            n += len(self.edit.actions) + 1  # the editor's keys and <C-q>
        return n


@dataclass
class CommitPlan:
    """The steps that replay one commit, and what became of each of its edit rows."""

    commit_index: int
    commit: str
    steps: list[Step]
    changes: list[dict]  # one per edit row: path, status, outcome
    skipped: dict[str, int]

    @property
    def num_actions(self) -> int:
        return sum(step.num_actions for step in self.steps)


def plan_commit(rows: list[dict], options: RenderOptions) -> CommitPlan:
    """The shell commands and editor keys that replay one commit's edit rows."""
    first = rows[0]
    recorded = first.get("summary") is not None  # edits 1.1: the crawl recorded git's output
    repo = without_location(first["repo"])  # the same history types alike from any folder
    rng = rng_for(options.seed, "shell", repo, first["commit"])
    look, check_status, check_diff = (
        rng.random() < p for p in (LS_PROBABILITY, STATUS_PROBABILITY, DIFF_STAT_PROBABILITY)
    )
    branch = first.get("branch") if recorded else "main"
    look = look and recorded
    check_status = check_status and recorded and branch is not None
    check_diff = check_diff and recorded
    tree = Worktree()
    person = person_for(options.typist, options.seed, options.typo_rate, repo)
    mass = commit_reason(rows)  # a reformat or search-and-replace over many files
    steps: list[Step] = []
    changes: list[dict] = []
    skipped: dict[str, int] = {}
    typed = 0
    inserted = deleted = 0
    modes: list[str] = []
    adds: list[tuple[Step, str]] = []  # `git add` of new files, and the path: git status may wait
    subject = commit_subject(first["message"])
    commit_command = f"git commit -am {shell_word(subject)}"
    # The closing `git commit` always plays; each change's steps must fit in what is left.
    actions = len(commit_command) + 1
    for row in rows:
        path, status = row["path"], row["status"]
        before, after = row["before"], row["after"]
        folder = split(path)[0]
        if recorded:
            tree.know(folder, row.get("listing"))
        change = {
            "commit_index": row["commit_index"],
            "commit": row["commit"],
            "path": path,
            "old_path": row["old_path"],
            "status": status,
            "outcome": "rendered",
        }
        changes.append(change)
        where = len(changes) - 1
        word = shell_word(path)
        mine: list[Step] = []  # this change's steps, kept only if they fit the commit's bound
        listing = _ls_step(folder, row.get("listing")) if look and tree.untouched(folder) else None
        if listing is not None:
            mine.append(listing)
        if status == "deleted":
            mine.append(Step(f"git rm -q {word}", change=where))
            if _fits(mine, actions, options, change, skipped):
                look = look and listing is None  # one look around per commit
                steps.extend(mine)
                actions += sum(step.num_actions for step in mine)
                deleted += len(git_lines(before or ""))
                modes.append(f" delete mode {row['mode']:o} {shown_path(path)}")
                tree.remove(path)
            continue
        made = tree.mkdir_target(folder, row.get("new_dir")) if recorded else None
        mkdir = Step(f"mkdir -p {shell_word(made)}", change=where) if made is not None else None
        if status == "renamed":
            if mkdir is not None:
                mine.append(mkdir)
            old_path = row["old_path"] or path
            mine.append(Step(f"git mv {shell_word(old_path)} {word}", change=where))
        before_text = before or ""
        after_text = after or ""
        plan = None
        if before_text != after_text:
            # Cheap bounds first, before planning: at least the growth in length must be typed,
            # and no editor key adds or removes more than one line (so a change over both the
            # typing and the action bound may be counted under either).
            reason = None
            if mass and status != "added":
                reason = mass
            elif (machine_made := change_reason(path, before, after)) is not None:
                reason = machine_made
            elif len(after_text) - len(before_text) > options.max_typed_chars_per_change:
                reason = "change_typing_budget"
            elif (
                abs(after_text.count("\n") - before_text.count("\n"))
                > options.max_actions_per_change
            ):
                reason = "change_action_budget"
            elif (
                actions + abs(after_text.count("\n") - before_text.count("\n"))
                > options.max_actions_per_commit
            ):
                reason = "commit_action_budget"
            else:
                plan = person.plan_edit(before_text, after_text, row["commit"], path)
                if plan.typed > options.max_typed_chars_per_change:
                    reason = "change_typing_budget"
                elif len(plan.actions) > options.max_actions_per_change:
                    reason = "change_action_budget"
                elif typed + plan.typed > options.max_typed_chars_per_commit:
                    reason = "commit_typing_budget"
            if reason is not None:
                change["outcome"] = reason
                skipped[reason] = skipped.get(reason, 0) + 1
                plan = None
        add = None
        if change["outcome"] == "rendered":
            if status == "added" and mkdir is not None:
                mine.append(mkdir)
            if status == "added" and plan is None:
                mine.append(Step(f"touch {word}", change=where))
            elif plan is not None:
                mine.append(
                    Step(f"edit {word}", edit=plan, before=before_text, path=path, change=where)
                )
            executable = row["mode"] == 0o100755
            if status == "added" and executable:
                mine.append(Step(f"chmod +x {word}"))
            elif status == "modified" and before_text == after_text:
                mine.append(Step(f"chmod {'+x' if executable else '-x'} {word}", change=where))
            if status == "added":
                add = Step(f"git add {word}")
                mine.append(add)
        if listing is not None and len(mine) == 1:
            mine = []  # nothing to do in the folder after all: no reason to list it
        if not _fits(mine, actions, options, change, skipped):
            continue
        if listing is not None and mine:
            look = False  # one look around per commit
        steps.extend(mine)
        actions += sum(step.num_actions for step in mine)
        if any(step is mkdir for step in mine):
            tree.mkdir(made)
        if status == "renamed":
            tree.move(row["old_path"] or path, path)
        if change["outcome"] != "rendered":
            continue  # a rename whose text change was skipped: only `git mv` plays
        if status == "added":
            tree.create(path)
            adds.append((add, path))
        elif plan is not None or status == "modified":
            tree.modify(path, before_text, after_text)
        if plan is not None:
            typed += plan.typed
            inserted += plan.inserted
            deleted += plan.deleted
        if status == "added":
            modes.append(f" create mode {row['mode']:o} {shown_path(path)}")
    if check_status or check_diff:
        actions = _look_before_committing(
            steps, tree, adds, branch, first, check_status, check_diff, actions, options
        )
    else:
        for _, path in adds:
            tree.add(path)
    if recorded:
        head = f"[{branch or 'detached HEAD'}"
        summary = [visible(line) for line in first["summary"]]
    else:
        head = "[main"
        summary = [shortstat(len(rows), inserted, deleted), *modes]  # edits without git's own
    root = " (root-commit)" if first["parent"] is None else ""
    # The branch is repository text too: shown, never acted on.
    first_line = visible(f"{head}{root} {first['commit'][:7]}] {subject}")
    steps.append(Step(commit_command, output=[first_line, *summary]))
    return CommitPlan(first["commit_index"], first["commit"], steps, changes, skipped)


def _ls_step(folder: str, listing: list[str] | None) -> Step | None:
    """`ls` of `folder` as the parent commit left it, when the crawl recorded its entries and
    `ls` would print them in a form reproduced here, briefly enough."""
    if listing is None:
        return None
    lines = ls_lines(sorted(listing), COLS)
    if lines is None or len(lines) > MAX_OUTPUT_LINES:
        return None
    command = f"ls {shell_word(folder)}" if folder else "ls"
    return Step(command, output=[visible(line) for line in lines])


def _look_before_committing(
    steps: list[Step],
    tree: Worktree,
    adds: list[tuple[Step, str]],
    branch: str | None,
    first: dict,
    check_status: bool,
    check_diff: bool,
    actions: int,
    options: RenderOptions,
) -> int:
    """Add `git status` and `git diff --stat` before the commit, with what git would print;
    before `git status`, new files in folders with tracked content stay untracked (their
    `git add` moves after it). Returns the commit's actions with them."""
    later = []
    for step, path in adds:
        if check_status and tree.keeps_tracked(split(path)[0]):
            later.append(step)
            tree.untracked.append(path)
        else:
            tree.add(path)
    nothing = not (tree.staged or tree.unstaged or tree.untracked)
    if check_status and not nothing:
        unstaged = dict.fromkeys(tree.unstaged, "M")
        lines = status_lines(
            branch or "", first["parent"] is None, tree.staged, unstaged, tree.untracked
        )
        actions = _append_if_fits(steps, Step("git status"), lines, actions, options)
    if check_diff and tree.unstaged:
        files = []
        for path in sorted(tree.unstaged):
            before, after = tree.unstaged[path]
            patch = pygit2.Patch.create_from(before.encode(), after.encode(), context_lines=0)
            _, added, removed = patch.line_stats
            files.append((path, added, removed))
        lines = stat_lines(files, COLS)
        actions = _append_if_fits(steps, Step("git diff --stat"), lines, actions, options)
    if later:
        waiting = {id(step) for step in later}
        steps[:] = [step for step in steps if id(step) not in waiting] + later
    return actions


def _append_if_fits(
    steps: list[Step], step: Step, lines: list[str], actions: int, options: RenderOptions
) -> int:
    """Append `step` printing `lines`, unless they are too long or it passes the commit's
    action bound; the commit's actions after it."""
    if len(lines) > MAX_OUTPUT_LINES:
        return actions
    if actions + step.num_actions > options.max_actions_per_commit:
        return actions
    step.output = [visible(line) for line in lines]
    steps.append(step)
    return actions + step.num_actions


def _fits(
    mine: list[Step], actions: int, options: RenderOptions, change: dict, skipped: dict
) -> bool:
    """Whether a change's steps fit in the commit's actions so far; if not, it is skipped and
    counted (`commit_action_budget`; a change skipped already keeps its first reason)."""
    if actions + sum(step.num_actions for step in mine) <= options.max_actions_per_commit:
        return True
    if change["outcome"] == "rendered":
        change["outcome"] = "commit_action_budget"
        skipped["commit_action_budget"] = skipped.get("commit_action_budget", 0) + 1
    return False


def group_into_sessions(frames_per_commit: list[int], max_frames: int) -> list[tuple[int, int]]:
    """Group consecutive commits into sessions of at most `max_frames` frames each.

    `frames_per_commit[k]` is commit k's number of actions; a session's frames are one more
    than its commits' actions (the final logout action). A commit larger than `max_frames`
    is a session of its own (its metadata says `oversized`). Returns [start, end) positions
    into `frames_per_commit`.
    """
    sessions = []
    start, total = 0, 1
    for k, n in enumerate(frames_per_commit):
        if k > start and total + n > max_frames:
            sessions.append((start, k))
            start, total = k, 1
        total += n
    if frames_per_commit:
        sessions.append((start, len(frames_per_commit)))
    return sessions
