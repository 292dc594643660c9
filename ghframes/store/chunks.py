"""Lazy access to one session's frames: open in milliseconds, decode a chunk only when shown.

`open_lazy(data, session_id)` reads the shard (reader.py checks its chunk layout) and
keeps each chunk's zstd blob undecoded; `frame(t)` decodes the chunk holding frame t, and
`colours(t)` its colour planes (a few recently used chunks stay cached). Used by the viewer and
the exports, so a session of a million frames opens without decoding a million frames.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from ghframes.errors import GhframesError
from ghframes.store import shards
from ghframes.store.frames import Dataset, SessionInfo, open_dataset
from ghframes.store.geometry import COLS, WIDE_STUB
from ghframes.store.planes import PLANES
from ghframes.store.reader import FrameShard
from ghframes.store.search import SearchCancelled, find_in_frames

CACHE_CHUNKS = 8


@dataclass
class Commit:
    index: int  # commit_index in the repository's history
    id: str
    first_frame: int
    message: str  # first line of the commit message ("" when DATA/edits is not at hand)


class LazySession:
    """One session whose frames are decoded a chunk at a time.

    actions: T strings; cursor: uint8 [T, 2] (row, col); dt: uint16 [T], ms each frame was on
    screen before its action (schemas/frames.json), or None for a shard before frames 1.3;
    chunks: the shard's chunks (the frame reader's `Chunks`), frames still compressed;
    has_colour: whether the shard has colour planes (frames 2.0 on; else `colours` are 0)."""

    def __init__(self, dataset: Dataset, session_id: str) -> None:
        info = dataset._info(session_id)
        self.id = session_id
        self.path = f"{dataset.root}/{info['shard']}"
        shard = FrameShard(dataset.fs, self.path)
        self.metadata = shard.description()
        self.repo = self.metadata["repo"]
        self.chunks = shard.read()
        self.num_frames = self.chunks.total_frames
        self._first = self.chunks.first_frame.tolist()
        self.actions: list[str] = self.chunks.actions.flatten().to_pylist()
        self.cursor = self.chunks.cursor
        self.dt = self.chunks.dt
        messages = commit_messages(dataset, info["key"])
        self.commits = [
            Commit(int(i), c, int(f), messages.get(c, "")) for i, c, f in self.metadata["commits"]
        ]
        self.changes: list[dict] = self.metadata.get("changes", [])
        self._change_starts = [c["first_frame"] for c in self.changes if c["first_frame"] >= 0]
        self._change_rows = [c for c in self.changes if c["first_frame"] >= 0]
        self.has_colour = self.chunks.has_colour
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._colour_cache: OrderedDict[int, tuple[np.ndarray, ...]] = OrderedDict()

    def __len__(self) -> int:
        return self.num_frames

    def chunk_of(self, t: int) -> int:
        return bisect.bisect_right(self._first, t) - 1

    def _check(self, t: int) -> None:
        if not 0 <= t < self.num_frames:
            raise GhframesError(
                f"session {self.id}: frame {t} is out of range (0..{self.num_frames - 1})"
            )

    def chunk(self, k: int) -> np.ndarray:
        """The decoded frames of chunk k, `[n, ROWS, COLS]` (cached)."""
        got = self._cache.get(k)
        if got is not None:
            self._cache.move_to_end(k)
            return got
        got = self.chunks.decode(k)
        self._cache[k] = got
        if len(self._cache) > CACHE_CHUNKS:
            self._cache.popitem(last=False)
        return got

    def frame(self, t: int) -> np.ndarray:
        """Frame t, `[ROWS, COLS]` code points."""
        self._check(t)
        k = self.chunk_of(t)
        return self.chunk(k)[t - self._first[k]]

    def colours(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame t's (fg, bg, attrs), uint8 [ROWS, COLS] each (read-only views; all 0 for a
        shard before frames 2.0): the colour planes of its chunk, decoded once (cached)."""
        self._check(t)
        k = self.chunk_of(t)
        got = self._colour_cache.get(k)
        if got is None:
            got = tuple(self.chunks.plane(k, name) for name in PLANES)
            for plane in got:
                plane.flags.writeable = False
            self._colour_cache[k] = got
            if len(self._colour_cache) > CACHE_CHUNKS:
                self._colour_cache.popitem(last=False)
        else:
            self._colour_cache.move_to_end(k)
        i = t - self._first[k]
        return got[0][i], got[1][i], got[2][i]

    def commit_at(self, t: int) -> Commit | None:
        """The commit whose frames include t (the last commit starting at or before t)."""
        starts = [c.first_frame for c in self.commits]
        i = bisect.bisect_right(starts, t) - 1
        return self.commits[i] if i >= 0 else (self.commits[0] if self.commits else None)

    def change_at(self, t: int) -> dict | None:
        """The rendered change whose frames include t."""
        i = bisect.bisect_right(self._change_starts, t) - 1
        return self._change_rows[i] if i >= 0 else None

    def search(
        self,
        text: str,
        start: int,
        backward: bool = False,
        cancel: Callable[[int], bool] | None = None,
    ) -> int | None:
        """The first frame from `start` (inclusive, going forward or backward) whose screen
        shows `text` on one row, a row read as its characters without wide-character stubs (so
        "世界" matches as typed); None when no frame does. Before each chunk it calls `cancel(t)`,
        t the next frame it would read; True stops the search with SearchCancelled."""
        needle = [ord(c) for c in text]
        if not needle or WIDE_STUB in needle or len(needle) > COLS or not self.num_frames:
            return None  # a row's text holds at most COLS characters and never a stub
        start = min(max(start, 0), self.num_frames - 1)
        k0 = self.chunk_of(start)
        top = max(needle)
        for k in range(k0, -1, -1) if backward else range(k0, len(self._first)):
            first, count = self._first[k], int(self.chunks.num_frames[k])
            lo = max(start - first, 0) if not backward else 0
            hi = min(start - first + 1, count) if backward else count
            if cancel is not None and cancel(first + (hi - 1 if backward else lo)):
                raise SearchCancelled(first + (hi - 1 if backward else lo))
            if top >= 1 << (8 * int(self.chunks.frame_itemsize[k])):
                continue  # the chunk's dtype cannot hold that character: skip it undecoded
            hit = find_in_frames(self.chunk(k), needle, lo, hi, last=backward)
            if hit is not None:
                return first + hit
        return None


def commit_messages(dataset: Dataset, key: str) -> dict[str, str]:
    """{commit id: first line of its message} from DATA/edits for repository `key` ({} if absent)."""
    try:
        _, root = shards.filesystem(dataset.data)
        _, manifest = shards.read_named_json(dataset.fs, f"{root}/edits", shards.MANIFEST)
        if not manifest or key not in manifest.get("repos", {}):
            return {}
        out: dict[str, str] = {}
        for name in manifest["repos"][key].get("shards", []):
            with dataset.fs.open_input_file(f"{root}/edits/{name}") as f:
                table = pq.read_table(f, columns=["commit", "message"])
            commits = table.column("commit").to_pylist()
            for c, m in zip(commits, table.column("message").to_pylist(), strict=True):
                out.setdefault(c, (m or "").split("\n", 1)[0])
        return out
    except Exception:  # messages only label things; frames never depend on them
        return {}


def open_lazy(data: str, session_id: str) -> LazySession:
    return LazySession(open_dataset(data), session_id)


def list_sessions(data: str) -> list[SessionInfo]:
    return open_dataset(data).sessions()
