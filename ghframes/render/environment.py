"""The renderer's shell and editor as an environment: go to a recorded frame, press one key.

`Environment(DATA, session_id)` reads the session's recorded actions (its shard, through
ghframes.store.reader) and the edit rows of its commits (DATA/edits, as `ghframes verify`
does), and plans each commit again as the render did (render/commits.py). Then

- `reset(frame)` returns the screen of recorded frame N: a fresh terminal, the prompt, and
  the session's own actions 0..N-1 pressed through `step`;
- `step(action)` presses one key (an action of schemas/actions.json) and returns the frame it
  causes (`Frame`: code points and the fg, bg, attrs planes as the shards hold them, and the
  cursor).

The line typed at the prompt is prompt.py's; the position in the plans, the files, the tree
and the programs a command runs are workspace.py's.

What is exact. Output goes through the renderer's own terminal path (render/terminal.py: the
pyte screen the recorder captures). In the editor every key goes to the real `Editor`
(render/editor.py), which draws itself; a command typed at the prompt is echoed character by
character; a command equal to a step of the commit's plan (the commands the renderer types:
`edit PATH`, `git add`, `git rm -q`, `git mv`, `mkdir -p`, `touch`, `chmod`, `ls`, `git status`,
`git diff --stat`, `git commit -am MSG`) prints what the render printed, and `edit` opens the
editor on the text the render opened. So replaying a session's recorded actions reproduces
its recorded frames exactly (characters, colours, attributes, cursor), frame for frame; the
environment checks on opening that the plans still give the session's recorded keys (else
DATA/edits changed since the render) and refuses a session of another renderer version.

What is approximated, once the keys leave the recorded path:
- The files are what DATA knows: the texts of the session's edit rows (each commit's files as
  they were before it, and after it once its `git commit` has run) and what this environment's
  editor saved since `reset`. A file the rows never show opens empty; the renderer's editor
  quits without asking to save, and unsaved changes are lost. A file the model saved keeps its
  text in later commits, over the recorded one.
- A command that is not the plan's prints what this model of the tree says: `ls` lists the
  folder as the crawl recorded it at the commit's start (`listing`) plus what commands did since;
  `git status` and `git diff --stat` are computed as the planner computes them
  (render/worktree.py), from the commands and saves of the current commit; `git commit -m MSG`
  prints the recorded commit's first line with MSG's subject and the recorded summary, and
  moves on to the next recorded commit (past the last one: an id made from a hash, the
  summary counted from the tree; with nothing to commit, the status); `git add`, `git rm`,
  `git mv`, `chmod` print git's and coreutils' error for a path the tree does not hold. The plan's `ls`, `git status` and
  `git diff --stat` keep printing the recorded tree, whatever the model changed.
- The machine has no other programs: any other command prints bash's
  `bash: NAME: command not found` (`echo` and `exit`/`logout` aside); another git subcommand
  prints git's line for an unknown one. Words are split and quoted as bash splits them
  (`'…'`, `"…"`, `\\`, `$'…'`; an open quote asks for more with `> `); pipes, redirections,
  variables and globs are not interpreted.
- Line editing is readline's emacs keys (`<Left>`, `<Right>`, `<Home>`, `<End>`, `<BS>`,
  `<Del>`, `<C-a>`, `<C-e>`, `<C-b>`, `<C-f>`, `<C-k>`, `<C-u>`, `<C-w>`, `<C-y>`, `<C-Left>`,
  `<C-Right>`, `<C-c>`, `<C-l>`, history on `<Up>`/`<Down>`); the line is redrawn from its
  start rather than with readline's minimal updates (the same screen, wide characters that
  wrap aside); `<Tab>` completes nothing. `<C-d>` on an empty line logs out (`logout`), and
  the environment is `done`.
- A key the editor refuses in its state (`<Esc>` with no prompt open, a key after `<C-v>`
  that inserts nothing) changes nothing, as `EditorError` guarantees.

Untrusted text stays data: file text reaches the screen only through the editor's drawing
(control characters as `^X`), command output and names only through `shell.visible`, and a
model's keys are checked against the vocabulary before anything is done with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from ghframes.errors import GhframesError
from ghframes.render.cells import is_typable
from ghframes.render.commits import Step, plan_commit
from ghframes.render.editor import Editor, EditorError
from ghframes.render.prompt import Prompt, shell_words
from ghframes.render.session import FINAL_ACTION, RENDERER_VERSION, RenderOptions
from ghframes.render.shell import prompt_for, visible
from ghframes.render.terminal import Terminal, text_of
from ghframes.render.workspace import Workspace, normal
from ghframes.store import schema, shards
from ghframes.store.actions import BY_NUMBER_PATTERN, TOKENS
from ghframes.store.edits import EDITS_DIR, commits_of, read_edits
from ghframes.store.frames import open_dataset
from ghframes.store.reader import FrameShard
from ghframes.text import shown

_BY_NUMBER = re.compile(BY_NUMBER_PATTERN)
_TOKENS = frozenset(TOKENS)
ACCEPT = ("<Enter>", "<C-m>", "<C-j>")  # readline's accept-line
LOGOUT = "logout"  # what bash prints as a login shell ends (`exit`, `logout`, <C-d>)


def is_action(action: object) -> bool:
    """Whether `action` is a key of schemas/actions.json: a printable character, a named token
    or a code point entered by number."""
    if not isinstance(action, str):
        return False
    if len(action) == 1:
        return is_typable(action)
    return action in _TOKENS or _BY_NUMBER.fullmatch(action) is not None


def check_action(action: object) -> str:
    """`action`, or one GhframesError naming it when it is not a key of the vocabulary."""
    if not is_action(action):
        raise GhframesError(
            f"action {shown(repr(action))} is not in the vocabulary (schemas/actions.json: a "
            "printable character, a named token such as <Enter>, or <U+XXXX>)"
        )
    return action


@dataclass(frozen=True, eq=False)
class Frame:
    """One screen, as the frames table stores it.

    chars:         uint32 [ROWS, COLS] code points (0: the right half of a wide character)
    fg, bg, attrs: uint8 [ROWS, COLS] palette values and attribute bits (schemas/frames.json)
    cursor:        (row, col)
    """

    chars: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    attrs: np.ndarray
    cursor: tuple[int, int]

    def text(self) -> list[str]:
        """The screen's rows as text (wide characters once)."""
        return text_of(self.chars)


class Environment:
    """One rendered session's shell and editor, to be reset to a recorded frame and stepped.

    Attributes: `session_id`, `repo`, `actions` (the T recorded actions), `num_frames` (T),
    `position` (keys pressed since frame 0: the recorded frame shown while `on_record`),
    `on_record` (every key since frame 0 was the recorded one), `done` (the shell logged out),
    `editor` (the open Editor, or None at the prompt), `files` (path -> text, as this
    environment knows them now).
    """

    def __init__(self, data: str, session_id: str) -> None:
        dataset = open_dataset(data)
        info = dataset._info(session_id)  # "DATA: no session 'X'"
        shard = FrameShard(dataset.fs, f"{dataset.root}/{info['shard']}", colours=False)
        metadata = shard.description()
        self.session_id = session_id
        self.repo: str = metadata["repo"]
        self.actions: list[str] = shard.read().actions.flatten().to_pylist()
        self.num_frames = len(self.actions)
        version = str(metadata.get("renderer_version"))
        if version != RENDERER_VERSION:
            raise GhframesError(
                f"session {session_id}: rendered by renderer version {version}, this environment "
                f"is version {RENDERER_VERSION}: render {data} again to step it"
            )
        try:
            self.options = RenderOptions(**metadata.get("options", {}))
        except TypeError as exc:
            raise GhframesError(f"session {session_id}: render options not known ({exc})") from None
        self._commits = _session_commits(data, info, session_id)
        self._steps: list[tuple[int, Step]] = []  # (commit position, step), in the render's order
        self._starts: list[int] = []  # each commit's first step, and the end
        for k, rows in enumerate(self._commits):
            self._starts.append(len(self._steps))
            self._steps.extend((k, step) for step in plan_commit(rows, self.options).steps)
        self._starts.append(len(self._steps))
        self._check_plan(data)
        self.prompt = prompt_for(self.repo, self.options.color)
        self.reset(0)

    def _check_plan(self, data: str) -> None:
        """The keys the plans type are the recorded ones (else the edits changed since)."""
        keys: list[str] = []
        for _, step in self._steps:
            keys.extend(step.command)
            keys.append("<Enter>")
            if step.edit is not None:
                keys.extend(step.edit.actions)
                keys.append("<C-q>")
        keys.append(FINAL_ACTION)
        if keys != self.actions:
            t = next(
                (i for i, (a, b) in enumerate(zip(keys, self.actions, strict=False)) if a != b),
                min(len(keys), len(self.actions)),
            )
            raise GhframesError(
                f"session {self.session_id}: the edits of {data} no longer give its recorded keys "
                f"(first difference at frame {t}): render {data} again"
            )

    # -- the interface

    def reset(self, frame: int) -> Frame:
        """The state at recorded frame `frame` (0 .. num_frames - 1), reached by pressing the
        session's own actions 0..frame-1 from a fresh prompt; returns that frame."""
        if isinstance(frame, bool) or not isinstance(frame, int | np.integer):
            raise GhframesError(f"session {self.session_id}: frame {shown(repr(frame))} is no int")
        if not 0 <= frame < self.num_frames:
            raise GhframesError(
                f"session {self.session_id}: frame {frame} is out of range "
                f"(0..{self.num_frames - 1})"
            )
        self.terminal = Terminal(True)  # as the recorder's: planes all 0 without colour
        self.position = 0
        self.on_record = True
        self.done = False
        self.editor: Editor | None = None
        self._saves: str | None = None  # what the record saves in the open editor
        self._out: list[str] = []
        self._line = Prompt(self.terminal)
        self._work = Workspace(
            self._commits, self._steps, self._starts, self.options.color, self.session_id
        )
        self._line.show(self.prompt)
        for action in self.actions[:frame]:
            self._press(action)
        return self.frame()

    def step(self, action: str) -> Frame:
        """Press `action` (a key of schemas/actions.json); the frame it causes."""
        check_action(action)
        if self.done:
            raise GhframesError(
                f"session {self.session_id}: the shell has logged out; reset to go on"
            )
        self._press(action)
        return self.frame()

    def frame(self) -> Frame:
        """The screen now (copies)."""
        chars = self.terminal.capture().copy()
        fg, bg, attrs = (plane.copy() for plane in self.terminal.planes)
        return Frame(chars, fg, bg, attrs, self.terminal.cursor)

    @property
    def files(self) -> dict[str, str]:
        return dict(self._work.texts)

    # -- keys

    def _press(self, action: str) -> None:
        if self.on_record and (
            self.position >= self.num_frames or self.actions[self.position] != action
        ):
            self.on_record = False
        self.position += 1
        if self.editor is not None:
            self._editor_key(action)
        elif len(action) == 1:
            self._line.type(action)
        elif action in ACCEPT:
            self._accept()
        elif action == "<C-d>" and self._line.empty:
            self._logout("")  # after the prompt, as bash writes it
        elif action == "<C-c>":
            self._line.cancel(self.prompt)
        elif action == "<C-l>":
            self._line.clear_screen(self.prompt)
        else:
            self._line.edit(action)  # readline's; others (<Tab>, <U+XXXX>, ...) do nothing

    def _editor_key(self, action: str) -> None:
        editor, out = self.editor, self._out
        out.clear()
        plain = editor.prompt is None and not editor.quoting
        try:
            editor.press(action)
        except EditorError:
            return  # a key the editor cannot take here: nothing changes
        if editor.done:  # <C-q>, as the render quits
            editor.close()
            self.editor = None
            self.terminal.feed("".join(out))
            self._line.show(self.prompt)
            return
        if plain and action == "<C-s>":
            self._work.saved(editor.path, editor.text, self._saves)
        self.terminal.feed("".join(out))

    def _logout(self, before: str) -> None:
        self.terminal.feed(before + LOGOUT + "\r\n")
        self.done = True

    # -- commands

    def _accept(self) -> None:
        command = self._line.take()
        words = shell_words(command)
        if words is None:  # an open quote: bash asks for the rest
            self._line.more(command)
            return
        self._line.remember(command)
        work = self._work
        j = work.scripted(command)
        if j is not None:  # a step of the plan, as the render ran it
            _, step = self._steps[j]
            work.script = j + 1
            if step.edit is not None:
                self._open(step.path, *work.open_text(j))
                return
            if work.is_commit(j):
                lines = work.output(step)
                work.finish_commit()
            else:
                work.run(words[0], words[1:])  # what it does to the tree
                lines = work.output(step)
            self._print(lines)
            return
        name, args = (words[0], words[1:]) if words else ("", [])
        if name == "edit" and len(args) == 1:
            path = normal(args[0])
            self._open(path, work.texts.get(path, ""), None)
        elif name in ("exit", LOGOUT):
            self._logout("\r\n")
        elif not name:
            self._print([])
        else:
            lines = work.run(name, args) if name != "edit" else ["usage: edit FILE"]
            self._print([visible(f"bash: {name}: command not found")] if lines is None else lines)

    def _print(self, lines: list[str]) -> None:
        """A command's output lines after its <Enter>, then the prompt, as the render prints."""
        self.terminal.feed("\r\n" + "".join(line + "\r\n" for line in lines))
        self._line.show(self.prompt)

    def _open(self, path: str, text: str, saves: str | None) -> None:
        """`edit PATH`: the editor over the shell on `text`, as the render opens it; `saves`:
        the text the record saves (None off the plan). A new file exists once saved."""
        self._out.clear()
        self.editor = Editor(text, path, self._out, color=self.options.color)
        self._saves = saves
        self.editor.open()
        self.terminal.feed("\r\n" + "".join(self._out))


def _session_commits(data: str, info: dict, session_id: str) -> list[list[dict]]:
    """The edit rows of the session's commits, grouped by commit (as the render read them)."""
    fs, root = shards.filesystem(data)
    edits_root = f"{root}/{EDITS_DIR}"
    manifest = shards.read_manifest(fs, edits_root, schema.load("edits"))
    if manifest is None:
        raise GhframesError(f"{data}: no edits to replay session {session_id} from")
    entry = manifest.get("repos", {}).get(info["key"])
    if entry is None or not entry.get("shards"):
        raise GhframesError(f"{edits_root}/{shards.MANIFEST}: no repository {info['key']!r}")
    table, _ = read_edits(fs, edits_root, entry["shards"], info["key"])
    index = table["commit_index"]
    keep = pc.and_(
        pc.greater_equal(index, info["first_commit_index"]),
        pc.less_equal(index, info["last_commit_index"]),
    )
    commits = commits_of(table.filter(keep))
    if not commits:
        raise GhframesError(f"session {session_id}: {data}/edits holds none of its commits")
    return commits
