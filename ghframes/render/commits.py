"""Commit plans: the shell commands and editor keys of one commit, and commits grouped into sessions.

For every change of a commit the person types a shell command (`edit PATH`, `git mv OLD NEW`,
`git rm -q PATH`, `touch PATH`, `chmod +x PATH`, `git add PATH`), works in the editor when the
file's text changes, then commits with the message's first line (`git commit -am '…'`). A plan
depends only on the commit's edit rows and the options, so the pipeline can count a commit's
frames without drawing them and start a session at any commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ghframes.render.replay import EditPlan, git_lines, plan_edit
from ghframes.render.shell import commit_subject, shell_word, shown_path

if TYPE_CHECKING:  # for annotations only: session.py, which defines it, imports this module
    from ghframes.render.session import RenderOptions


@dataclass
class Step:
    """One shell command; with `edit`, it opens the editor on `before` and plays the plan."""

    command: str
    output: list[str] = field(default_factory=list)
    edit: EditPlan | None = None
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
    steps: list[Step] = []
    changes: list[dict] = []
    skipped: dict[str, int] = {}
    typed = 0
    inserted = deleted = 0
    modes: list[str] = []
    subject = commit_subject(first["message"])
    commit_command = f"git commit -am {shell_word(subject)}"
    # The closing `git commit` always plays; each change's steps must fit in what is left.
    actions = len(commit_command) + 1
    for row in rows:
        path, status = row["path"], row["status"]
        before, after = row["before"], row["after"]
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
        if status == "deleted":
            mine.append(Step(f"git rm -q {word}", change=where))
            if _fits(mine, actions, options, change, skipped):
                steps.extend(mine)
                actions += sum(step.num_actions for step in mine)
                deleted += len(git_lines(before or ""))
                modes.append(f" delete mode {row['mode']:o} {shown_path(path)}")
            continue
        if status == "renamed":
            mine.append(Step(f"git mv {shell_word(row['old_path'] or path)} {word}", change=where))
        before_text = before or ""
        after_text = after or ""
        plan = None
        if before_text != after_text:
            # Cheap bounds first, before planning: at least the growth in length must be typed,
            # and no editor key adds or removes more than one line (so a change over both the
            # typing and the action bound may be counted under either).
            reason = None
            if len(after_text) - len(before_text) > options.max_typed_chars_per_change:
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
                plan = plan_edit(before_text, after_text)
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
        if change["outcome"] == "rendered":
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
                mine.append(Step(f"git add {word}"))
        if not _fits(mine, actions, options, change, skipped):
            continue
        steps.extend(mine)
        actions += sum(step.num_actions for step in mine)
        if change["outcome"] != "rendered":
            continue  # a rename whose text change was skipped: only `git mv` plays
        if plan is not None:
            typed += plan.typed
            inserted += plan.inserted
            deleted += plan.deleted
        if status == "added":
            modes.append(f" create mode {row['mode']:o} {shown_path(path)}")
    root = " (root-commit)" if first["parent"] is None else ""
    files = len(rows)
    summary = f" {files} file{'s' if files != 1 else ''} changed"
    # git prints both counts when both are 0 (a rename or mode change alone)
    if inserted or not deleted:
        summary += f", {inserted} insertion{'s' if inserted != 1 else ''}(+)"
    if deleted or not inserted:
        summary += f", {deleted} deletion{'s' if deleted != 1 else ''}(-)"
    steps.append(
        Step(
            commit_command,
            output=[f"[main{root} {first['commit'][:7]}] {subject}", summary, *modes],
        )
    )
    return CommitPlan(first["commit_index"], first["commit"], steps, changes, skipped)


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
