"""Sessions: a repository's commits played out at a shell prompt and in the editor, frame by frame.

For every change of a commit the person types a shell command (`edit PATH`, `git mv OLD NEW`,
`git rm -q PATH`, `touch PATH`, `chmod +x PATH`, `git add PATH`), works in the editor when the
file's text changes, then commits with the message's first line (`git commit -am '…'`). Every
keystroke is an action, and the screen after it is the next frame. The plan of a commit depends
only on its edit rows and the options, so sessions can start at any commit and the pipeline can
count a commit's frames without drawing them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from ghframes.errors import GhframesError
from ghframes.render.editor import Editor, is_typable
from ghframes.render.replay import EditPlan, git_lines, plan_edit
from ghframes.render.terminal import COLS, ROWS, Terminal
from ghframes.store.codec import FRAMES_PER_CHUNK, encode_chunk

RENDERER_VERSION = "2"  # bump when the same input would render different frames
USER_HOST = "dev@ghframes"
MAX_SUBJECT_CHARS = 120
FINAL_ACTION = "<C-d>"  # the person logs out: the last frame's action


@dataclass(frozen=True)
class RenderOptions:
    """Bounds on what a session holds; beyond them, changes are skipped and counted, never cut.

    A session that one commit alone takes past `max_frames_per_session` is kept whole and
    flagged `oversized` in its metadata.
    """

    max_frames_per_session: int = 200_000
    max_typed_chars_per_change: int = 20_000
    max_typed_chars_per_commit: int = 60_000
    # Editor keys of one change, deletions and navigation included. Above the typing bound
    # (a change typing 20,000 characters also walks to its hunks and may press two keys per
    # control character), so it binds the changes that typing does not: long cuts and walks.
    max_actions_per_change: int = 25_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise GhframesError(
                    f"--{name.replace('_', '-')} must be a positive integer, got {value!r}"
                )

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ shell text

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
    name = repo.rstrip("/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if is_typable(c) and c != "$")[:40] or "repo"
    return f"{USER_HOST}:~/{name}$ "


# ------------------------------------------------------------------ planning


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
        if status == "deleted":
            steps.append(Step(f"git rm -q {word}", change=where))
            deleted += len(git_lines(before or ""))
            modes.append(f" delete mode {row['mode']:o} {shown_path(path)}")
            continue
        if status == "renamed":
            steps.append(Step(f"git mv {shell_word(row['old_path'] or path)} {word}", change=where))
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
            else:
                typed += plan.typed
                inserted += plan.inserted
                deleted += plan.deleted
        if change["outcome"] != "rendered":
            continue
        if status == "added" and plan is None:
            steps.append(Step(f"touch {word}", change=where))
        elif plan is not None:
            steps.append(
                Step(f"edit {word}", edit=plan, before=before_text, path=path, change=where)
            )
        executable = row["mode"] == 0o100755
        if status == "added" and executable:
            steps.append(Step(f"chmod +x {word}"))
        elif status == "modified" and before_text == after_text:
            steps.append(Step(f"chmod {'+x' if executable else '-x'} {word}", change=where))
        if status == "added":
            steps.append(Step(f"git add {word}"))
            modes.append(f" create mode {row['mode']:o} {shown_path(path)}")
    subject = commit_subject(first["message"])
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
            f"git commit -am {shell_word(subject)}",
            output=[f"[main{root} {first['commit'][:7]}] {subject}", summary, *modes],
        )
    )
    return CommitPlan(first["commit_index"], first["commit"], steps, changes, skipped)


def split_sessions(frames_per_commit: list[int], max_frames: int) -> list[tuple[int, int]]:
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


# ------------------------------------------------------------------ recording


class Recorder:
    """Feeds output to the terminal and cuts (frame, action, cursor) triples into chunks.

    Frame t is recorded before action t; a chunk is complete when it holds
    `FRAMES_PER_CHUNK` frames and their actions.
    """

    def __init__(self) -> None:
        self.terminal = Terminal()
        self.num_frames = 0
        self._frames = np.empty((FRAMES_PER_CHUNK, ROWS, COLS), dtype=np.uint32)
        self._cursor = np.empty((FRAMES_PER_CHUNK, 2), dtype=np.uint8)
        self._actions: list[str] = []
        self._n = 0
        self.chunks: dict[str, list] = {
            "chunk": [],
            "first_frame": [],
            "num_frames": [],
            "frame_itemsize": [],
            "frames": [],
            "actions": [],
            "cursor": [],
        }

    def frame(self) -> None:
        """Capture the screen as the next frame."""
        terminal = self.terminal
        self._frames[self._n] = terminal.capture()
        self._cursor[self._n] = terminal.cursor
        self._n += 1
        self.num_frames += 1

    def act(self, action: str, output: str | None) -> None:  # profiled: once per keystroke
        """Record `action` for the last frame, feed its output, capture the next frame."""
        self._actions.append(action)
        if self._n == FRAMES_PER_CHUNK:
            self._flush()
        if output is not None:
            self.terminal.feed(output)
            self.frame()

    def _flush(self) -> None:
        n = self._n
        if not n:
            return
        itemsize, blob = encode_chunk(self._frames[:n])
        chunks = self.chunks
        chunks["chunk"].append(len(chunks["chunk"]))
        chunks["first_frame"].append(self.num_frames - n)
        chunks["num_frames"].append(n)
        chunks["frame_itemsize"].append(itemsize)
        chunks["frames"].append(blob)
        chunks["actions"].append(self._actions)
        chunks["cursor"].append(self._cursor[:n].tobytes())
        self._actions = []
        self._n = 0

    def finish(self) -> dict[str, list]:
        """Flush the last chunk; return the chunk columns."""
        assert len(self._actions) == self._n, "every frame needs its action"
        self._flush()
        return self.chunks


def render_session(
    repo: str, commits: list[list[dict]], options: RenderOptions
) -> tuple[dict, dict]:
    """Play `commits` (each a list of edit rows) as one session.

    Returns (chunk columns, session metadata without its id).
    """
    recorder = Recorder()
    prompt = prompt_for(repo)
    recorder.terminal.feed(prompt)
    recorder.frame()
    commit_records, change_records = [], []
    skipped: dict[str, int] = {}
    act = recorder.act
    for rows in commits:
        plan = plan_commit(rows, options)
        commit_records.append([plan.commit_index, plan.commit, recorder.num_frames - 1])
        for reason, n in plan.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
        for change in plan.changes:
            change["first_frame"] = -1
        for step in plan.steps:
            if step.change is not None and plan.changes[step.change]["first_frame"] < 0:
                plan.changes[step.change]["first_frame"] = recorder.num_frames - 1
            for char in step.command:
                act(char, char)
            if step.edit is None:
                output = "\r\n" + "".join(line + "\r\n" for line in step.output) + prompt
                act("<Enter>", output)
                continue
            out: list[str] = []
            editor = Editor(step.before, step.path, out)
            editor.open()
            act("<Enter>", "\r\n" + "".join(out))
            change = plan.changes[step.change]
            change["editor_first"] = recorder.num_frames - 1
            change["editor_actions"] = len(step.edit.actions)
            press = editor.press
            for action in step.edit.actions:
                out.clear()
                press(action)
                act(action, "".join(out))
            out.clear()
            editor.press("<C-q>")
            editor.close()
            act("<C-q>", "".join(out) + prompt)
        change_records.extend(plan.changes)
    recorder.act(FINAL_ACTION, None)
    chunks = recorder.finish()
    metadata = {
        "repo": repo,
        "first_commit_index": commits[0][0]["commit_index"],
        "last_commit_index": commits[-1][0]["commit_index"],
        "num_commits": len(commits),
        "num_frames": recorder.num_frames,
        "num_changes": len(change_records),
        "commits": commit_records,
        "changes": change_records,
        "skipped": dict(sorted(skipped.items())),
        # The pipeline splits sessions only between commits: past the bound, one commit alone
        # is larger (split_sessions).
        "oversized": recorder.num_frames > options.max_frames_per_session,
        "unknown_sequences": recorder.terminal.unknown_sequences,
        "options": options.as_dict(),
        "renderer_version": RENDERER_VERSION,
    }
    return chunks, metadata
