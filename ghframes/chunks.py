"""Lazy access to one session's frames: open in milliseconds, decode a chunk only when shown.

`open_lazy(data, session_id)` reads the shard's small columns (chunk layout, actions, cursor)
and keeps each chunk's zstd blob undecoded; `frame(t)` decodes the chunk holding frame t
(a few recently used chunks stay cached). Used by the viewer and the exports, so a session of
a million frames opens without decoding a million frames.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ghframes import shards
from ghframes.codec import decode_chunk
from ghframes.errors import GhframesError
from ghframes.frames import Dataset, SessionInfo, frames_schema, open_dataset, read_session_metadata
from ghframes.terminal import COLS, ROWS, WIDE_STUB

CACHE_CHUNKS = 8


@dataclass
class Commit:
    index: int  # commit_index in the repository's history
    id: str
    first_frame: int
    message: str  # first line of the commit message ("" when DATA/edits is not at hand)


class LazySession:
    """One session whose frames are decoded a chunk at a time."""

    def __init__(self, dataset: Dataset, session_id: str) -> None:
        info = dataset._info(session_id)
        self.id = session_id
        self.path = f"{dataset.root}/{info['shard']}"
        self.metadata = read_session_metadata(dataset.fs, self.path)
        self.repo = self.metadata["repo"]
        table = shards.read_table(dataset.fs, self.path, frames_schema())
        self._blobs = table.column("frames").combine_chunks()
        chunk = table.column("chunk").to_numpy()
        first = table.column("first_frame").to_numpy()
        count = table.column("num_frames").to_numpy()
        self._itemsize = table.column("frame_itemsize").to_pylist()
        expected = np.concatenate([[0], np.cumsum(count)[:-1]]) if len(count) else count
        bad = np.flatnonzero((chunk != np.arange(len(chunk))) | (first != expected))
        if bad.size:
            k = int(bad[0])
            raise GhframesError(
                f"{self.path}: chunk {chunk[k]}: out of order (first_frame {first[k]}, "
                f"expected {expected[k]})"
            )
        self.num_frames = int(count.sum())
        if self.num_frames != self.metadata["num_frames"]:
            raise GhframesError(
                f"{self.path}: chunks hold {self.num_frames} frames, "
                f"the session says {self.metadata['num_frames']}"
            )
        self._first = first.tolist()
        self._count = count.tolist()
        actions = table.column("actions").combine_chunks()
        self.actions: list[str] = actions.flatten().to_pylist()
        cursor = table.column("cursor").combine_chunks()
        raw = _join_binary(cursor)
        if len(self.actions) != self.num_frames or len(raw) != 2 * self.num_frames:
            raise GhframesError(
                f"{self.path}: {self.num_frames} frames but {len(self.actions)} actions "
                f"and {len(raw) // 2} cursor positions"
            )
        self.cursor = np.frombuffer(raw, dtype=np.uint8).reshape(self.num_frames, 2)
        messages = commit_messages(dataset, info["key"])
        self.commits = [
            Commit(int(i), c, int(f), messages.get(c, "")) for i, c, f in self.metadata["commits"]
        ]
        self.changes: list[dict] = self.metadata.get("changes", [])
        self._change_starts = [c["first_frame"] for c in self.changes if c["first_frame"] >= 0]
        self._change_rows = [c for c in self.changes if c["first_frame"] >= 0]
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return self.num_frames

    def chunk_of(self, t: int) -> int:
        return bisect.bisect_right(self._first, t) - 1

    def chunk(self, k: int) -> np.ndarray:
        """The decoded frames of chunk k, `[n, ROWS, COLS]` (cached)."""
        got = self._cache.get(k)
        if got is not None:
            self._cache.move_to_end(k)
            return got
        got = decode_chunk(
            self._blobs[k].as_py(), self._itemsize[k], self._count[k], f"{self.path}: chunk {k}"
        )
        self._cache[k] = got
        if len(self._cache) > CACHE_CHUNKS:
            self._cache.popitem(last=False)
        return got

    def frame(self, t: int) -> np.ndarray:
        """Frame t, `[ROWS, COLS]` code points."""
        if not 0 <= t < self.num_frames:
            raise GhframesError(
                f"session {self.id}: frame {t} is out of range (0..{self.num_frames - 1})"
            )
        k = self.chunk_of(t)
        return self.chunk(k)[t - self._first[k]]

    def commit_at(self, t: int) -> Commit | None:
        """The commit whose frames include t (the last commit starting at or before t)."""
        starts = [c.first_frame for c in self.commits]
        i = bisect.bisect_right(starts, t) - 1
        return self.commits[i] if i >= 0 else (self.commits[0] if self.commits else None)

    def change_at(self, t: int) -> dict | None:
        """The rendered change whose frames include t."""
        i = bisect.bisect_right(self._change_starts, t) - 1
        return self._change_rows[i] if i >= 0 else None

    def search(self, text: str, start: int, backward: bool = False) -> int | None:
        """The first frame from `start` (inclusive, going forward or backward) whose screen
        shows `text` on one row; None when no frame does."""
        if not text:
            return None
        needle = np.array([ord(c) for c in text], dtype="<u4").tobytes()
        width = COLS + 1
        frame_bytes = ROWS * width * 4
        if not self.num_frames:
            return None
        start = min(max(start, 0), self.num_frames - 1)
        k0 = self.chunk_of(start)
        order = range(k0, -1, -1) if backward else range(k0, len(self._first))
        for k in order:
            frames = self.chunk(k)
            n = len(frames)
            grid = np.full((n, ROWS, width), 0xFFFFFFFF, dtype="<u4")
            grid[:, :, :COLS] = frames
            # wide characters: drop their stubs so "世界" matches as typed
            hay = grid.tobytes()
            hits = _find_all(hay, needle, self._stub_free(frames))
            base = self._first[k]
            frames_hit = sorted({h // frame_bytes for h in hits})
            if backward:
                frames_hit = [f for f in frames_hit if base + f <= start]
                if frames_hit:
                    return base + frames_hit[-1]
            else:
                frames_hit = [f for f in frames_hit if base + f >= start]
                if frames_hit:
                    return base + frames_hit[0]
        return None

    @staticmethod
    def _stub_free(frames: np.ndarray) -> bool:
        return not bool((frames == WIDE_STUB).any())


def _find_all(hay: bytes, needle: bytes, stub_free: bool) -> list[int]:
    """Byte offsets (4-aligned) of `needle` in `hay`, a UTF-32 grid."""
    if not stub_free:
        # Remove the wide-character stubs row by row would shift offsets; compare per frame text
        # instead (rare: only chunks showing wide characters take this path).
        return _find_with_stubs(hay, needle)
    out = []
    at = hay.find(needle)
    while at >= 0:
        if at % 4 == 0:
            out.append(at)
        at = hay.find(needle, at + 1)
    return out


def _find_with_stubs(hay: bytes, needle: bytes) -> list[int]:
    grid = np.frombuffer(hay, dtype="<u4").reshape(-1, ROWS, COLS + 1)
    text = needle.decode("utf-32-le")
    out = []
    frame_bytes = ROWS * (COLS + 1) * 4
    for f in range(len(grid)):
        for row in grid[f].tolist():
            if text in "".join(chr(c) for c in row if c != WIDE_STUB and c != 0xFFFFFFFF):
                out.append(f * frame_bytes)
                break
    return out


def _join_binary(array) -> bytes:
    """The concatenated values of a pyarrow binary array, without a Python object per value."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    data = array.buffers()[2]
    return bytes(memoryview(data)[offsets[0] : offsets[-1]])


def commit_messages(dataset: Dataset, key: str) -> dict[str, str]:
    """{commit id: first line of its message} from DATA/edits for repository `key` ({} if absent)."""
    try:
        _, root = shards.filesystem(dataset.data)
        manifest = shards.read_json(dataset.fs, f"{root}/edits/{shards.MANIFEST}")
        if not manifest or key not in manifest.get("repos", {}):
            return {}
        out: dict[str, str] = {}
        import pyarrow.parquet as pq

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
