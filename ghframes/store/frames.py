"""Frame shards: write a rendered session, and open the sessions of DATA (`open_dataset`).

Layout under DATA/frames/: one Parquet shard per session (rows = chunks of frames, columns from
schemas/frames.json, `CHUNKS_PER_ROW_GROUP` rows per row group, the session's description in
the shard's key-value metadata), `_sessions.parquet` (one row per session, store/sessions.py)
and `_manifest.json`, written after every shard, listing sessions and per-repository status. Each shard is read through reader.py, which checks it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ghframes.errors import GhframesError
from ghframes.store import schema, shards
from ghframes.store.codec import DTYPES
from ghframes.store.geometry import COLS, ROWS
from ghframes.store.planes import PLANES
from ghframes.store.reader import SESSION_KEY, FrameShard

FRAMES_DIR = "frames"
# Chunks per Parquet row group: a reader fetches only the row groups holding the frames it needs
# (byte ranges on object storage). Measured on the render benchmark's session (43 k frames,
# segmented chunks, codec.py): 15.6 B/frame with 4 chunks per group, 14.8 with 8 (each group
# costs ~1.1 kB of column metadata, page headers, and compression lost on the small
# actions/cursor pages); 8 reads 2,048 frames (~30 kB) at a time, a sensible object-store read.
CHUNKS_PER_ROW_GROUP = 8


def frames_schema() -> schema.TableSchema:
    return schema.load("frames")


def write_session(fs, path: str, session_id: str, chunks: dict[str, list], metadata: dict) -> int:
    """Write one session's chunk columns as a shard at `path`, atomically; return its bytes."""
    table_schema = frames_schema()
    columns = dict(chunks, session=[session_id] * len(chunks["chunk"]))
    missing = [name for name in table_schema.names if name not in columns]
    if missing:  # a caller's bug (every column is required in new shards): name it
        raise ValueError(f"{path}: the chunk columns lack {', '.join(map(repr, missing))}")
    table = pa.table({name: columns[name] for name in table_schema.names})
    return shards.write_table(
        fs,
        path,
        table,
        table_schema,
        row_group_size=CHUNKS_PER_ROW_GROUP,
        # min/max of the frames blobs would copy every blob into the footer; no reader filters
        write_statistics=False,
        footer_metadata={
            SESSION_KEY: json.dumps(dict(metadata, session=session_id), sort_keys=True)
        },
    )


def write_one_session_dataset(
    data: str,
    name: str,
    encoded: list[tuple[int, int, bytes]],
    path: str | None = None,
    dt: int | np.ndarray = 100,
    colours: list[tuple[bytes, bytes, bytes]] | None = None,
) -> str:
    """Write DATA/frames as a dataset of one session `name` made of already encoded chunks,
    `(num_frames, frame_itemsize, zstd blob)` each, with its manifest; return the session id.
    For benchmarks and tests that need sessions no history would give (a million frames, a
    damaged chunk). Actions are "x", cursors (0, 0); `dt`: ms before each action, one for all
    or `[num_frames]` of them; `path`: the file edited from frame 0; `colours`: per chunk its
    encoded (fg, bg, attrs) (store/planes.py `encode_plane`), default all 0."""
    counts = [count for count, _, _ in encoded]
    starts = [int(x) for x in np.concatenate([[0], np.cumsum(counts)[:-1]])]
    chunks = {
        "chunk": list(range(len(encoded))),
        "first_frame": starts,
        "num_frames": counts,
        "frame_itemsize": [itemsize for _, itemsize, _ in encoded],
        "frames": [blob for _, _, blob in encoded],
        "actions": [["x"] * c for c in counts],
        "cursor": [bytes(2 * c) for c in counts],
        "dt": [
            part.tobytes()
            for part in np.split(np.broadcast_to(np.asarray(dt, "<u2"), sum(counts)), starts[1:])
        ],
    }
    planes = colours if colours is not None else [(b"", b"", b"")] * len(encoded)
    for p, plane in enumerate(PLANES):
        chunks[plane] = [blobs[p] for blobs in planes]
    fs, root = shards.filesystem(data)
    sid = f"{name}-0000000000-c000000"
    changes = [] if path is None else [{"first_frame": 0, "path": path}]
    meta = {"repo": name, "key": name, "num_frames": sum(counts), "first_commit_index": 0}
    meta.update(last_commit_index=0, commits=[[0, "0" * 40, 0]], changes=changes)
    size = write_session(fs, f"{root}/{FRAMES_DIR}/{name}.parquet", sid, chunks, meta)
    entry = {k: v for k, v in meta.items() if k not in ("commits", "changes")}
    entry.update(shard=f"{name}.parquet", num_commits=1, num_changes=len(changes), bytes=size)
    entry.update(skipped={}, oversized=False, unknown_sequences=0)
    manifest = {"table": "frames", "version": frames_schema().version, "repos": {}}
    manifest["sessions"] = {sid: entry}
    shards.write_manifest(fs, f"{root}/{FRAMES_DIR}", manifest)
    return sid


def read_session_metadata(fs, path: str) -> dict:
    """The session description stored in the shard at `path` (reads the footer only)."""
    return FrameShard(fs, path).description()


@dataclass(frozen=True)
class SessionInfo:
    """One session as the manifest lists it."""

    id: str
    repo: str
    key: str
    first_commit_index: int
    last_commit_index: int
    num_commits: int
    num_frames: int
    shard: str  # relative to DATA/frames


@dataclass
class Session:
    """A decoded session.

    frames:  uint8/16/32 [T, 48, 160] code points (0: right half of a wide character)
    actions: T strings; actions[t] is the key pressed on frames[t]
    cursor:  uint8 [T, 2] (row, col)
    fg, bg:  uint8 [T, 48, 160] each cell's colours: 0 the default, 1..255 the xterm-256 palette
             index (black stored as 16; schemas/frames.json `fg`); all 0 for a 1.x shard
    attrs:   uint8 [T, 48, 160] attribute bits: 1 bold, 2 italic, 4 underline, 8 reverse,
             16 strikethrough, 32 blink
    dt:      uint16 [T] ms: how long frames[t] was on screen before actions[t] was pressed
             (frame t appears with action t - 1; dt[0]: before the first key; capped at
             65,535); None for a shard of frames schema 1.0 to 1.2, which records no times
    commits: [(commit_index, commit, first_frame)]: where each commit's first command starts
    changes: one dict per edit row (see schemas/frames.json)
    """

    id: str
    repo: str
    frames: np.ndarray
    actions: list[str]
    cursor: np.ndarray
    dt: np.ndarray | None
    commits: list[tuple[int, str, int]]
    changes: list[dict]
    metadata: dict
    fg: np.ndarray
    bg: np.ndarray
    attrs: np.ndarray


class Dataset:
    """The frames of DATA: `sessions()` lists them, `session(id)` decodes one."""

    def __init__(self, data: str) -> None:
        self.data = data
        self.fs, root = shards.filesystem(data)
        self.root = f"{root}/{FRAMES_DIR}"
        manifest = shards.read_manifest(self.fs, self.root, frames_schema())
        if manifest is None:
            raise GhframesError(f"{data}: no rendered frames (run `ghframes render {data}` first)")
        self.manifest = manifest

    def sessions(self) -> list[SessionInfo]:
        """Every session, ordered by id."""
        return [
            SessionInfo(
                id=sid,
                repo=s["repo"],
                key=s["key"],
                first_commit_index=s["first_commit_index"],
                last_commit_index=s["last_commit_index"],
                num_commits=s["num_commits"],
                num_frames=s["num_frames"],
                shard=s["shard"],
            )
            for sid, s in sorted(self.manifest["sessions"].items())
        ]

    def _info(self, session_id: str) -> dict:
        info = self.manifest["sessions"].get(session_id)
        if info is None:
            raise GhframesError(f"{self.data}: no session {session_id!r}")
        return info

    def session(self, session_id: str) -> Session:
        """Decode one session: only its own shard is read."""
        info = self._info(session_id)
        shard = FrameShard(self.fs, f"{self.root}/{info['shard']}")
        metadata = shard.description()
        chunks = shard.read()
        itemsize = int(chunks.frame_itemsize.max(initial=1))
        frames = np.empty((chunks.total_frames, ROWS, COLS), dtype=DTYPES.get(itemsize, np.uint32))
        planes = np.empty((len(PLANES), chunks.total_frames, ROWS, COLS), np.uint8)
        for k, (at, n) in enumerate(zip(chunks.first_frame, chunks.num_frames, strict=True)):
            frames[at : at + n] = chunks.decode(k)
            for plane, name in zip(planes, PLANES, strict=True):
                chunks.plane_into(k, name, plane[at : at + n])
        return Session(
            session_id,
            metadata["repo"],
            frames,
            chunks.actions.flatten().to_pylist(),
            chunks.cursor.copy(),
            None if chunks.dt is None else chunks.dt.copy(),
            [tuple(c) for c in metadata["commits"]],
            metadata["changes"],
            metadata,
            *planes,
        )


def open_dataset(data: str) -> Dataset:
    """The rendered frames of DATA (a local path or a pyarrow filesystem URI).

    `sessions()` lists them (SessionInfo); `session(id)` decodes one (Session): frames
    `[T, 48, 160]` code points, actions (T strings), cursor uint8 `[T, 2]`, dt uint16 `[T]`,
    each action's time in ms since its frame appeared (None in shards before frames schema 1.3),
    and the colour planes fg, bg, attrs uint8 `[T, 48, 160]` (zeros before frames schema 2.0).
    """
    return Dataset(data)


def frames_stats(data: str) -> dict:
    """Totals of DATA/frames for `ghframes stats`: sessions, frames, bytes, skipped changes,
    sessions that one commit alone took past --max-frames-per-session."""
    manifest = open_dataset(data).manifest
    sessions = manifest["sessions"].values()
    frames = sum(s["num_frames"] for s in sessions)
    size = sum(s["bytes"] for s in sessions)
    skipped: dict[str, int] = {}
    for s in sessions:
        for reason, n in s["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + n
    return {
        "sessions": len(manifest["sessions"]),
        "repos_failed": sum(1 for r in manifest["repos"].values() if r["status"] != "ok"),
        "frames": frames,
        "bytes": size,
        "bytes_per_frame": round(size / frames, 2) if frames else 0.0,
        "changes": sum(s["num_changes"] for s in sessions),
        "skipped_changes": dict(sorted(skipped.items())),
        "oversized_sessions": sum(1 for s in sessions if s.get("oversized")),  # from schema 1.2
        "unknown_sequences": sum(s["unknown_sequences"] for s in sessions),
    }
