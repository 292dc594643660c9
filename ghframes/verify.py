"""`ghframes verify DATA`: replay every session's actions through the editor model and check shards.

For each session, read a row group at a time (ghframes.store.reader, which checks the
chunk layout and the counts): every chunk decodes to `[num_frames, 48, 160]` with one action,
one cursor position and (shards of frames 1.3 on) one `dt` per frame, as many as the manifest
says, and (frames 2.0 on) so does each of its colour planes `fg`, `bg`, `attrs`; the terminal
met no unknown escape sequence; and for every change played in the editor, its actions, from
the file's `before` text, leave exactly its `after` text, saved, followed by `<C-q>`; and every
edit row of the session's commits is listed in it, rendered or counted as skipped. Mismatches
name session, commit and path.
"""

from __future__ import annotations

import sys

import numpy as np

from ghframes.errors import GhframesError
from ghframes.render.editor import Editor, EditorError
from ghframes.store import schema, shards
from ghframes.store.codec import FRAMES_PER_CHUNK
from ghframes.store.frames import open_dataset
from ghframes.store.geometry import COLS, ROWS
from ghframes.store.planes import PLANES
from ghframes.store.reader import FrameShard
from ghframes.text import shown


def _edit_rows(fs, root: str, manifest: dict, key: str, first: int, last: int) -> dict:
    """{(commit_index, path): row} of one repository's edits in [first, last]."""
    import pyarrow.compute as pc

    from ghframes.store.edits import read_edits

    entry = manifest["repos"].get(key)
    if entry is None:
        raise GhframesError(f"{root}/edits/{shards.MANIFEST}: no repository {key!r}")
    table, _ = read_edits(fs, f"{root}/edits", entry["shards"], key)
    index = table.column("commit_index")
    # only the session's commits become Python objects, not the repository's whole history
    table = table.filter(pc.and_(pc.greater_equal(index, first), pc.less_equal(index, last)))
    return {(row["commit_index"], row["path"]): row for row in table.to_pylist()}


class _Stream:
    """A session's actions one at a time, read a row group at a time (ghframes.store.reader,
    which checks the chunk layout and the counts); each chunk is decoded, counted and dropped:
    the memory of one row group, whatever the session's length."""

    def __init__(self, shard: FrameShard) -> None:
        self.frames = self.cursor = 0
        self.dt: int | None = None  # dt entries; None: a shard before frames 1.3 has none
        # the colour planes to check (a shard before frames 2.0 has none), into one chunk's room
        self.planes = PLANES if shard.has_colour else ()
        self._plane = np.empty((FRAMES_PER_CHUNK, ROWS, COLS), np.uint8)
        self.position = 0  # actions consumed
        self._actions = self._read(shard)
        self._next: str | None = None

    def _read(self, shard: FrameShard):
        for chunks in shard.groups():
            for k in range(chunks.k0, chunks.k0 + len(chunks)):
                n = len(chunks.decode(k))
                self.frames += n
                for name in self.planes:  # each decodes to [n, 48, 160], or raises
                    chunks.plane_into(k, name, self._plane[:n])
            self.cursor += len(chunks.cursor)
            if chunks.dt is not None:
                self.dt = (self.dt or 0) + len(chunks.dt)
            yield from chunks.actions.flatten().to_pylist()

    def peek(self) -> str | None:
        """The next action, or None past the last."""
        if self._next is None:
            self._next = next(self._actions, None)
        return self._next

    def take(self) -> str | None:
        action = self.peek()
        if action is not None:
            self._next = None
            self.position += 1
        return action

    def skip_to(self, position: int) -> None:
        while self.position < position and self.take() is not None:
            pass

    def drain(self) -> int:
        """Read to the end (the reader's last checks run there); the number of actions."""
        while self.take() is not None:
            pass
        return self.position


# Sessions of these renderer versions were typed before the editor autoindented.
WITHOUT_AUTOINDENT = {"1", "2"}


def _replay(
    stream: _Stream, row: dict, begin: int, count: int, where: str, autoindent: bool = True
) -> str | None:
    """Play a change's `count` actions from `begin` on its `before` text: the problem, or None."""
    stream.skip_to(begin)
    editor = Editor(row["before"] or "", autoindent=autoindent)
    try:
        for _ in range(count):
            action = stream.take()
            if action is None:
                break
            editor.press(action)
    except EditorError as exc:
        return f"{where}: action refused by the editor ({exc})"
    if editor.text != (row["after"] or ""):
        return f"{where}: replaying its {count} actions does not give the file's new text"
    if editor.modified:
        return f"{where}: the new text was never saved"
    if stream.peek() != "<C-q>":
        return f"{where}: the editor is not quit after the change"
    return None


def verify_session(dataset, info, edits_manifest: dict) -> list[str]:
    """Every problem found in one session, each a line naming the session and where.

    The edit rows of its commits are read first; then its shard is streamed once, each change
    replayed as its actions go by, so that no more than one row group and one file's editor
    are held at a time."""
    rows = _edit_rows(
        dataset.fs,
        dataset.root.rsplit("/", 1)[0],
        edits_manifest,
        info.key,
        info.first_commit_index,
        info.last_commit_index,
    )
    try:
        shard = FrameShard(dataset.fs, f"{dataset.root}/{info.shard}")
        metadata = shard.description()
        stream = _Stream(shard)
        changes = metadata["changes"]
        autoindent = str(metadata.get("renderer_version")) not in WITHOUT_AUTOINDENT
        found: dict[int, str] = {}  # change -> its problem, reported in the footer's order
        played = sorted(
            (change["editor_first"], j)
            for j, change in enumerate(changes)
            if "editor_first" in change
        )
        for begin, j in played:
            change = changes[j]
            row = rows.get((change["commit_index"], change["path"]))
            if row is None:
                continue
            where = f"{info.id}: {change['commit'][:12]}:{change['path']}"
            if begin < stream.position:  # editor ranges never overlap in a rendered session
                found[j] = f"{where}: its actions overlap the change before it"
                continue
            problem = _replay(stream, row, begin, change["editor_actions"], where, autoindent)
            if problem is not None:
                found[j] = problem
        T = stream.drain()
    except GhframesError as exc:
        return [f"{info.id}: {exc}"]
    problems = []
    dt = T if stream.dt is None else stream.dt
    # the reader matched actions, cursor, dt and frames chunk by chunk; these are the totals
    if not info.num_frames == T == stream.frames == stream.cursor == dt:
        times = "" if stream.dt is None else f", {stream.dt} dt"
        problems.append(
            f"{info.id}: {stream.frames} frames, {T} actions, "
            f"{stream.cursor} cursor positions{times}, manifest says {info.num_frames}"
        )
    if metadata.get("unknown_sequences"):
        problems.append(
            f"{info.id}: the terminal met {metadata['unknown_sequences']} unknown escape sequences"
        )
    listed = {(change["commit_index"], change["path"]) for change in changes}
    for (index, path), row in rows.items():
        if (index, path) not in listed:
            problems.append(
                f"{info.id}: {row['commit'][:12]}:{path}: change missing from the session"
            )
    for j, change in enumerate(changes):
        if (change["commit_index"], change["path"]) not in rows:
            problems.append(
                f"{info.id}: {change['commit'][:12]}:{change['path']}: no such change in the edits"
            )
        elif j in found:
            problems.append(found[j])
    return problems


def verify_dataset(data: str, session_ids: list[str] | None = None, stop_at_first: bool = True):
    """Yield every problem found (or only the first), session by session."""
    dataset = open_dataset(data)
    fs, root = shards.filesystem(data)
    edits_manifest = shards.read_manifest(fs, f"{root}/edits", schema.load("edits"))
    if edits_manifest is None:
        raise GhframesError(f"{data}: no edits manifest to verify against")
    infos = dataset.sessions()
    if session_ids:
        known = {i.id: i for i in infos}
        missing = [s for s in session_ids if s not in known]
        if missing:
            raise GhframesError(f"{data}: no session {missing[0]!r}")
        infos = [known[s] for s in session_ids]
    for status_key, status in dataset.manifest["repos"].items():
        if status["status"] != "ok" and not session_ids:
            yield f"{status_key}: not rendered ({status.get('error', 'failed')})"
            if stop_at_first:
                return
    for info in infos:
        for problem in verify_session(dataset, info, edits_manifest):
            yield problem
            if stop_at_first:
                return


def run(args, env) -> int:
    problems = 0
    for problem in verify_dataset(args.data, args.session or None, stop_at_first=not args.all):
        print(f"ghframes: mismatch: {shown(problem)}", file=sys.stderr)  # paths, messages
        problems += 1
    if problems:
        return 1
    dataset = open_dataset(args.data)
    frames = sum(s.num_frames for s in dataset.sessions())
    print(
        f"verified {len(dataset.sessions())} sessions, {frames} frames: replay exact, shards intact"
    )
    return 0
