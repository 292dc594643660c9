"""`ghframes verify DATA`: replay every session's actions through the editor model and check shards.

For each session, read a row group at a time (ghframes.store.reader, which checks the
chunk layout and the counts): every chunk decodes to `[num_frames, 48, 160]` with one action
and one cursor position per frame, as many as the manifest says; the terminal met no unknown
escape sequence; and for every change played in the editor, its actions, from the file's
`before` text, leave exactly its `after` text, saved, followed by `<C-q>`; and every edit row
of the session's commits is listed in it, rendered or counted as skipped. Mismatches name
session, commit and path.
"""

from __future__ import annotations

import sys

from ghframes.errors import GhframesError
from ghframes.render.editor import Editor, EditorError
from ghframes.store import shards
from ghframes.store.frames import open_dataset
from ghframes.store.reader import FrameShard


def _edit_rows(fs, root: str, manifest: dict, key: str, first: int, last: int) -> dict:
    """{(commit_index, path): row} of one repository's edits in [first, last]."""
    from ghframes.store.edits import read_edits

    entry = manifest["repos"].get(key)
    if entry is None:
        raise GhframesError(f"{root}/edits/manifest.json: no repository {key!r}")
    table, _ = read_edits(fs, f"{root}/edits", entry["shards"], key)
    rows = {}
    for row in table.to_pylist():
        if first <= row["commit_index"] <= last:
            rows[(row["commit_index"], row["path"])] = row
    return rows


def _read_session(dataset, info) -> tuple[dict, list[str], int, int]:
    """(description, actions, frames, cursor positions) of a session's shard, each chunk
    decoded and dropped in turn: the memory of one row group, whatever the session's length."""
    shard = FrameShard(dataset.fs, f"{dataset.root}/{info.shard}")
    description = shard.description()
    actions: list[str] = []
    frames = cursor = 0
    for chunks in shard.groups():
        for k in range(chunks.k0, chunks.k0 + len(chunks)):
            frames += len(chunks.decode(k))
        actions += chunks.actions.flatten().to_pylist()
        cursor += len(chunks.cursor)
    return description, actions, frames, cursor


def verify_session(dataset, info, edits_manifest: dict) -> list[str]:
    """Every problem found in one session, each a line naming the session and where."""
    try:
        metadata, actions, T, cursor = _read_session(dataset, info)
    except GhframesError as exc:
        return [f"{info.id}: {exc}"]
    problems = []
    if info.num_frames != T:  # the reader has matched actions and cursor to the frames
        problems.append(
            f"{info.id}: {T} frames, {len(actions)} actions, "
            f"{cursor} cursor positions, manifest says {info.num_frames}"
        )
    if metadata.get("unknown_sequences"):
        problems.append(
            f"{info.id}: the terminal met {metadata['unknown_sequences']} unknown escape sequences"
        )
    rows = _edit_rows(
        dataset.fs,
        dataset.root.rsplit("/", 1)[0],
        edits_manifest,
        info.key,
        info.first_commit_index,
        info.last_commit_index,
    )
    changes = metadata["changes"]
    listed = {(change["commit_index"], change["path"]) for change in changes}
    for (index, path), row in rows.items():
        if (index, path) not in listed:
            problems.append(
                f"{info.id}: {row['commit'][:12]}:{path}: change missing from the session"
            )
    for change in changes:
        where = f"{info.id}: {change['commit'][:12]}:{change['path']}"
        row = rows.get((change["commit_index"], change["path"]))
        if row is None:
            problems.append(f"{where}: no such change in the edits")
            continue
        if "editor_first" not in change:
            continue
        begin, count = change["editor_first"], change["editor_actions"]
        editor = Editor(row["before"] or "")
        try:
            for action in actions[begin : begin + count]:
                editor.press(action)
        except EditorError as exc:
            problems.append(f"{where}: action refused by the editor ({exc})")
            continue
        if editor.text != (row["after"] or ""):
            problems.append(
                f"{where}: replaying its {count} actions does not give the file's new text"
            )
        elif editor.modified:
            problems.append(f"{where}: the new text was never saved")
        elif begin + count >= T or actions[begin + count] != "<C-q>":
            problems.append(f"{where}: the editor is not quit after the change")
    return problems


def verify_dataset(data: str, session_ids: list[str] | None = None, stop_at_first: bool = True):
    """Yield every problem found (or only the first), session by session."""
    dataset = open_dataset(data)
    fs, root = shards.filesystem(data)
    edits_manifest = shards.read_json(fs, f"{root}/edits/{shards.MANIFEST}")
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
        print(f"ghframes: mismatch: {problem}", file=sys.stderr)
        problems += 1
    if problems:
        return 1
    dataset = open_dataset(args.data)
    frames = sum(s.num_frames for s in dataset.sessions())
    print(
        f"verified {len(dataset.sessions())} sessions, {frames} frames: replay exact, shards intact"
    )
    return 0
