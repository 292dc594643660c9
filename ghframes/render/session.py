"""Sessions: a repository's commits played out at a shell prompt and in the editor, frame by frame.

Every keystroke of a commit's plan (commits.py) is an action, and the screen after it is the
next frame (recorder.py). A session starts at the prompt and ends when the person logs out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ghframes.errors import GhframesError
from ghframes.render.commits import plan_commit
from ghframes.render.editor import Editor
from ghframes.render.recorder import Recorder
from ghframes.render.shell import coloured, prompt_for
from ghframes.render.typist import check_typist, person_for
from ghframes.store.identity import without_location

RENDERER_VERSION = "4"  # bump when the same input would render different frames
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
    # Actions of one commit: its shell commands and editor keys, the closing `git commit`
    # included. The per-change bounds leave a commit unbounded (30 files each emptied of
    # 20,000 lines are 600,000 keys); this keeps any commit within one default session.
    max_actions_per_commit: int = 200_000
    # The keyboard policy (render/typist.py: TYPISTS) and the seed every random choice of the
    # render derives from, with the repository, commit and path (render/seeding.py).
    typist: str = "human"
    seed: int = 0
    # Typos per typed character; None draws each repository's typist's rate from its
    # distribution (render/habits.py), 0 types without mistakes.
    typo_rate: float | None = None
    # Colour: the editor's syntax highlighting and bars, the prompt's and git's colours;
    # False (`--no-color`) draws the same screens without any colour or attribute.
    color: bool = True

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name in ("typist", "seed", "typo_rate", "color"):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GhframesError(
                    f"--{name.replace('_', '-')} must be a positive integer, got {value!r}"
                )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise GhframesError(f"--seed must be a non-negative integer, got {self.seed!r}")
        rate = self.typo_rate
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 0.5
        ):
            raise GhframesError(f"--typo-rate must be a number from 0 to 0.5, got {rate!r}")
        check_typist(self.typist)
        if not isinstance(self.color, bool):
            raise GhframesError(f"color must be true or false, got {self.color!r}")

    def as_dict(self) -> dict:
        """The options as recorded in the session identity, the shard footer and the manifest;
        an option added since renders were published appears only when set away from its
        default, so that those renders keep their names and bytes."""
        options = asdict(self)
        for name, default in ADDED_OPTIONS.items():
            if options[name] == default:
                del options[name]
        return options


# Options added after the current renderer version was published, with their defaults
# (see as_dict); empty since version 3 renamed every render.
ADDED_OPTIONS: dict[str, object] = {}


def render_session(
    repo: str, commits: list[list[dict]], options: RenderOptions
) -> tuple[dict, dict]:
    """Play `commits` (each a list of edit rows) as one session.

    Returns (chunk columns, session metadata without its id).
    """
    recorder = Recorder()
    # Drawn from, and shown as, the name without a local repository's location hash: the
    # same history renders the same frames wherever it was crawled from.
    name = without_location(repo)
    person = person_for(options.typist, options.seed, options.typo_rate, name)
    prompt = prompt_for(name, options.color)
    recorder.terminal.feed(prompt)
    recorder.frame()
    commit_records, change_records = [], []
    skipped: dict[str, int] = {}
    act = recorder.act
    printed = False  # the last command printed output: the next one waits a little longer
    for rows in commits:
        plan = plan_commit(rows, options)
        commit_records.append([plan.commit_index, plan.commit, recorder.num_frames - 1])
        for reason, n in plan.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
        for change in plan.changes:
            change["first_frame"] = -1
        for k, step in enumerate(plan.steps):
            if step.change is not None and plan.changes[step.change]["first_frame"] < 0:
                plan.changes[step.change]["first_frame"] = recorder.num_frames - 1
            times = person.command_times(step.command, plan.commit, k, printed)
            for char, ms in zip(step.command, times, strict=False):
                act(char, char, ms)
            if step.edit is None:
                lines = coloured(step.command, step.output) if options.color else step.output
                output = "\r\n" + "".join(line + "\r\n" for line in lines) + prompt
                act("<Enter>", output, times[-1])
                printed = bool(step.output)
                continue
            out: list[str] = []
            editor = Editor(step.before, step.path, out, color=options.color)
            editor.open()
            act("<Enter>", "\r\n" + "".join(out), times[-1])
            change = plan.changes[step.change]
            change["editor_first"] = recorder.num_frames - 1
            change["editor_actions"] = len(step.edit.actions)
            change["typos"] = step.edit.typos
            press = editor.press
            for action, ms in zip(step.edit.actions, step.edit.times, strict=True):
                out.clear()
                press(action)
                act(action, "".join(out), ms)
            out.clear()
            editor.press("<C-q>")
            editor.close()
            act("<C-q>", "".join(out) + prompt, person.pause("quit", plan.commit, k))
            printed = False
        change_records.extend(plan.changes)
    recorder.act(FINAL_ACTION, None, person.pause("command", "logout", 0))
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
        # is larger (commits.group_into_sessions).
        "oversized": recorder.num_frames > options.max_frames_per_session,
        "unknown_sequences": recorder.terminal.unknown_sequences,
        "options": options.as_dict(),
        "typist": person.as_dict(),
        "renderer_version": RENDERER_VERSION,
    }
    return chunks, metadata
