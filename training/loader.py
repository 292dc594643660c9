"""The streaming dataloader: rendered frame shards (DATA/frames) into training batches.

`FrameStream(source, batch_size, seq_len, mode, seed, split, rank, world_size, ...)` is a
`torch.utils.data.IterableDataset` of batch dicts (see `FrameStream` and the README, "The streaming dataloader"):

    frames  uint8 [B, T, 48, 160]  character ids (schemas/chars.json), 0 where mask is False
    actions long  [B, T]           action ids (index into `action_names`)
    cursor  long  [B, T, 2]        (row, col)
    reset   bool  [B, T]           a session (stream) or a window (window mode) starts here
    mask    bool  [B, T]           real data (False: padding)
    session long  [B, T]           index into `session_ids` (-1: padding)
    t       long  [B, T]           frame index in its session (-1: padding)

The order of an epoch is a pure function of (session ids and sizes from the manifest, seed,
epoch); `state_dict()` is {epoch, batch} plus the settings it is valid for.
"""

from __future__ import annotations

import bisect
import collections
import ctypes
import ctypes.util
import hashlib
import heapq
import itertools
import math
import mmap
import multiprocessing.reduction
import os
import sys
import time
import weakref
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch
import zstandard

from ghframes.errors import GhframesError
from ghframes.render.terminal import COLS, ROWS
from ghframes.store import shards
from ghframes.store.codec import FRAMES_PER_CHUNK, FRAMES_PER_SEGMENT, segments_of
from ghframes.store.frames import FRAMES_DIR, frames_schema

from .chars import ACTION_NAMES, ASCII_LIMIT, BMP_TABLE, CHAR_VOCAB, action_ids, char_ids

MODES = ("stream", "window")
SPLITS = ("train", "eval")
SPLIT_BY = ("session", "repo")  # what the held-out split holds out whole
CELLS = ROWS * COLS
COLUMNS = ["chunk", "first_frame", "num_frames", "frame_itemsize", "frames", "actions", "cursor"]
RETRIES = 3  # attempts after the first on a transient (OSError) read failure of a remote shard
RETRY_DELAY = 0.1  # seconds before the first retry; doubled before each next one
SHARED_SLOTS = 6  # batch buffers per DataLoader worker: prefetched, held, being filled
OPEN_SHARDS = 64  # shard files kept open (most recently read); layouts of all are kept


# -- zstd straight into the batch -----------------------------------------------------------------


class _Zstd:
    """One-shot zstd decompression into a numpy array (libzstd through ctypes; else a copy)."""

    def __init__(self) -> None:
        self.pid = -1
        self.lib = None
        name = ctypes.util.find_library("zstd")
        if name:
            try:
                lib = ctypes.CDLL(name)
                lib.ZSTD_createDCtx.restype = ctypes.c_void_p
                lib.ZSTD_decompressDCtx.restype = ctypes.c_size_t
                lib.ZSTD_decompressDCtx.argtypes = [
                    ctypes.c_void_p,
                    ctypes.c_void_p,
                    ctypes.c_size_t,
                    ctypes.c_void_p,
                    ctypes.c_size_t,
                ]
                lib.ZSTD_findFrameCompressedSize.restype = ctypes.c_size_t
                lib.ZSTD_findFrameCompressedSize.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
                lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
                lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
                lib.ZSTD_getErrorName.restype = ctypes.c_char_p
                self.lib = lib
            except (OSError, AttributeError):
                self.lib = None
        self.py = zstandard.ZstdDecompressor()

    def into(self, src_addr: int, src_len: int, src_view, dest: np.ndarray) -> str | None:
        """Decompress the zstd frames at src into `dest` (contiguous; its size exactly); the
        error, or None."""
        if self.lib is not None:
            if self.pid != os.getpid():  # a DataLoader worker: a context of its own
                self.ctx, self.pid = self.lib.ZSTD_createDCtx(), os.getpid()
            got = self.lib.ZSTD_decompressDCtx(
                self.ctx, dest.ctypes.data, dest.nbytes, src_addr, src_len
            )
            if self.lib.ZSTD_isError(got):
                return self.lib.ZSTD_getErrorName(got).decode()
        else:
            try:
                reader = self.py.stream_reader(src_view, read_across_frames=True)
                got = reader.readinto(dest.reshape(-1).view(np.uint8))
                while got < dest.nbytes and (
                    more := reader.readinto(memoryview(dest.reshape(-1).view(np.uint8))[got:])
                ):
                    got += more
                if got == dest.nbytes and reader.read(1):
                    got += 1
            except zstandard.ZstdError as exc:
                return str(exc)
        if got != dest.nbytes:
            return f"decode to {got} bytes, expected {dest.nbytes}"
        return None

    def segments(self, src_addr: int, src_len: int, src_view) -> list[tuple[int, int]]:
        """(start, end) byte offsets of each zstd frame at src (codec.segments_of's answer)."""
        if self.lib is None:
            return segments_of(src_view)
        out, at = [], 0
        while at < src_len:
            n = self.lib.ZSTD_findFrameCompressedSize(src_addr + at, src_len - at)
            if self.lib.ZSTD_isError(n):
                raise GhframesError(self.lib.ZSTD_getErrorName(n).decode())
            out.append((at, at + n))
            at += n
        return out


_ZSTD = _Zstd()


# -- one session's shard: its footer, and the row groups read so far ------------------------------


class _Shard:
    """One session's shard, opened: where each chunk's frames are and which row group holds it.

    Chunk k holds frames [k * FRAMES_PER_CHUNK, ...) (schemas/frames.json: every chunk but a
    session's last is full), so the footer alone maps frames to row groups; the row groups are
    read when needed (`FrameStream._part`), and each is checked against this layout."""

    def __init__(self, file: pq.ParquetFile, path: str, num_frames: int) -> None:
        self.file, self.path, self.num_frames = file, path, num_frames
        self.num_chunks = -(-num_frames // FRAMES_PER_CHUNK)
        meta = file.metadata
        if meta.num_rows != self.num_chunks:
            raise GhframesError(
                f"{path}: chunk {min(meta.num_rows, self.num_chunks)}: the shard holds "
                f"{meta.num_rows} chunks, the manifest's {num_frames} frames make {self.num_chunks}"
            )
        rows = [meta.row_group(r).num_rows for r in range(meta.num_row_groups)]
        self.group_first = [0, *itertools.accumulate(rows)]  # first chunk of each row group

    def group_of(self, k: int) -> int:
        return bisect.bisect_right(self.group_first, k) - 1


class _Part:
    """The chunks [k0, k0 + n) of one session (one row group), frames kept compressed.

    frames: one Arrow buffer of zstd blobs (`offsets` into it, per chunk); actions: int64 ids
    [frames]; cursor: int64 [frames, 2]; `first`: the session frame of the part's first frame."""

    def __init__(self, table: pa.Table, shard: _Shard, k0: int) -> None:
        path = self.path = shard.path
        cols = {name: table.column(name).combine_chunks() for name in COLUMNS}
        n = len(cols["chunk"])
        self.k0 = k0
        ks = np.arange(k0, k0 + n)
        firsts = np.minimum(ks * FRAMES_PER_CHUNK, shard.num_frames)
        expected = np.minimum(firsts + FRAMES_PER_CHUNK, shard.num_frames) - firsts
        chunk = cols["chunk"].to_numpy()
        first = cols["first_frame"].to_numpy()
        sizes = cols["num_frames"].to_numpy().astype(np.int64)
        wrong = np.flatnonzero((chunk != ks) | (first != firsts) | (sizes != expected))
        if len(wrong):
            j = int(wrong[0])
            raise GhframesError(
                f"{path}: chunk {k0 + j}: the row holds chunk {chunk[j]} (frames {first[j]}"
                f"..+{sizes[j]}); the manifest's layout puts chunk {k0 + j} at frames "
                f"{firsts[j]}..+{expected[j]} (chunks out of order or missing)"
            )
        self.first = int(firsts[0]) if n else 0
        self.itemsize = cols["frame_itemsize"].to_numpy().astype(np.int64)
        frames = cols["frames"]
        self.frames = frames  # keeps the buffer alive
        self.data = frames.buffers()[2]
        self.offsets = np.frombuffer(frames.buffers()[1], np.int32)[
            frames.offset : frames.offset + n + 1
        ].astype(np.int64)
        acts = cols["actions"]
        lengths = pc.list_value_length(acts).to_numpy(zero_copy_only=False)
        cur = cols["cursor"]
        cur_len = pc.binary_length(cur).to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero((lengths != sizes) | (cur_len != 2 * sizes))
        if len(wrong):
            j = int(wrong[0])
            raise GhframesError(
                f"{path}: chunk {k0 + j}: {sizes[j]} frames but {lengths[j]} actions "
                f"and {cur_len[j] // 2} cursor positions"
            )
        self.actions, bad = action_ids(acts.flatten())
        if bad >= 0:
            raise GhframesError(
                f"{path}: chunk {k0 + bad // FRAMES_PER_CHUNK}: "
                f"{acts.flatten()[bad].as_py()!r} is not an action"
            )
        coff = np.frombuffer(cur.buffers()[1], np.int32)[cur.offset : cur.offset + n + 1]
        raw = np.frombuffer(cur.buffers()[2], np.uint8)
        self.cursor = raw[coff[0] : coff[-1]].reshape(-1, 2).astype(np.int64)
        self.nbytes = self.data.size + self.actions.nbytes + self.cursor.nbytes
        self.segment_cache: dict[int, list[tuple[int, int]]] = {}  # chunk -> its zstd frames

    def _check_size(self, k: int) -> int:
        size = int(self.itemsize[k - self.k0])
        if size not in (1, 2, 4):
            raise GhframesError(f"{self.path}: chunk {k}: frame itemsize {size} is not 1, 2 or 4")
        return size

    def _blob(self, k: int) -> tuple[int, int]:
        return int(self.offsets[k - self.k0]), int(self.offsets[k - self.k0 + 1])

    def segment_bytes(self, k: int) -> list[tuple[int, int]]:
        """Byte ranges in `data` of chunk k's segments (zstd frames of FRAMES_PER_SEGMENT frames)."""
        got = self.segment_cache.get(k)
        if got is None:
            lo, hi = self._blob(k)
            try:
                found = _ZSTD.segments(
                    self.data.address + lo, hi - lo, memoryview(self.data)[lo:hi]
                )
            except GhframesError as exc:
                raise GhframesError(
                    f"{self.path}: chunk {k}: frames do not decompress ({exc})"
                ) from None
            got = self.segment_cache[k] = [(lo + a, lo + b) for a, b in found]
        return got

    def decode(
        self,
        k: int,
        dest: np.ndarray,
        scratch: dict,
        ascii_: np.ndarray,
        segment: int | None = None,
    ) -> None:
        """Character ids of chunk k (or of its segment `segment`) into `dest` (uint8
        [frames, ROWS, COLS], contiguous). `ascii_[k, 0]` (the chunk) and `ascii_[k, 1 + j]`
        (its segment j) remember whether the cells are all below 128 (1), not (2) or not yet
        known (0): frames seen before skip the scan for Latin-1."""
        size = self._check_size(k)
        if segment is None:
            lo, hi = self._blob(k)
        else:
            ranges = self.segment_bytes(k)
            if segment >= len(ranges):
                raise GhframesError(
                    f"{self.path}: chunk {k}: {len(ranges)} segments, expected "
                    f"more than {segment} ({FRAMES_PER_SEGMENT} frames each)"
                )
            lo, hi = ranges[segment]
        if size == 1:
            target = dest
        else:
            buf = scratch.get(size)
            if buf is None or buf.shape[0] < dest.shape[0]:
                buf = scratch[size] = np.empty((max(256, dest.shape[0]), ROWS, COLS), f"<u{size}")
            target = buf[: dest.shape[0]]
        view = memoryview(self.data)[lo:hi]
        err = _ZSTD.into(self.data.address + lo, hi - lo, view, target)
        if err:
            raise GhframesError(f"{self.path}: chunk {k}: frames do not decompress ({err})")
        if size == 1:
            j = 0 if segment is None else 1 + segment
            seen = 1 if ascii_[k, 0] == 1 else ascii_[k, j]
            if not seen:
                seen = ascii_[k, j] = 2 if dest.max() >= ASCII_LIMIT else 1
                if segment is None and seen == 1:  # then every segment of it is ASCII too
                    ascii_[k] = 1
            if seen == 2:  # Latin-1 cells: bucketed ids
                np.take(BMP_TABLE, dest.copy(), out=dest)
        else:
            char_ids(target, out=dest)


# -- batches in shared memory, for DataLoader workers ---------------------------------------------

PAGE = 4096


class _SharedSlots:
    """A DataLoader worker's batch buffers in shared memory (memfd), each reused once released.

    Sent as ordinary tensors, each batch would be copied by torch into fresh shared memory
    (15 MB of page faults and copying at B = 8, T = 256: more than decoding it). Instead the
    worker fills a slot in place and sends its file descriptor; the main process maps it and
    its tensors view the mapping. Byte 0 of a slot is 1 while its batch is in use: the main
    process writes 0 when the last tensor, array or view of the batch is freed (a finalizer on
    the mapping, which every one of them keeps alive), and the worker reuses only slots at 0.
    When all SHARED_SLOTS are in use (a consumer keeping batches), batches are new memory."""

    def __init__(self, shapes: dict[str, tuple[tuple[int, ...], str]]) -> None:
        self.layout = []  # (key, shape, dtype, byte offset)
        at = PAGE
        for key, (shape, dtype) in shapes.items():
            self.layout.append((key, shape, dtype, at))
            at += -(-math.prod(shape) * np.dtype(dtype).itemsize // 64) * 64
        self.size = at
        self.slots: list[tuple[int, mmap.mmap, dict[str, np.ndarray]]] = []

    def acquire(self) -> tuple[int, dict[str, np.ndarray]] | None:
        """(file descriptor, arrays) of a free slot, marked in use; None if none is free."""
        for fd, mem, arrays in self.slots:
            if mem[0] == 0:
                mem[0] = 1
                return fd, arrays
        if len(self.slots) >= SHARED_SLOTS:
            return None
        fd = os.memfd_create("ghframes-batch", os.MFD_CLOEXEC)
        os.ftruncate(fd, self.size)
        mem = mmap.mmap(fd, self.size)
        arrays = _views(mem, self.layout)
        mem[0] = 1
        self.slots.append((fd, mem, arrays))
        return fd, arrays


def _views(mem, layout) -> dict[str, np.ndarray]:
    return {
        key: np.frombuffer(mem, dtype, math.prod(shape), at).reshape(shape)
        for key, shape, dtype, at in layout
    }


class _SharedBatch(dict):
    """A batch filled in a worker's shared slot: it pickles as the slot's file descriptor."""

    def __init__(self, tensors: dict, fd: int, slots: _SharedSlots) -> None:
        super().__init__(tensors)
        self.fd, self.slots, self.sent = fd, slots, False

    def __copy__(self):  # DataLoader's default_convert copies the batch before sending it
        return _SharedBatch(dict(self), self.fd, self.slots)

    def __reduce__(self):
        if self.sent:  # a second copy would release the slot while the first is in use
            return dict, ({k: v.clone() for k, v in self.items()},)
        self.sent = True
        df = multiprocessing.reduction.DupFd(self.fd)
        return _attach_batch, (df, self.slots.size, self.slots.layout)


class _Mapping(mmap.mmap):
    """An mmap that can carry a finalizer (weak references)."""


def _attach_batch(df, size: int, layout) -> dict[str, torch.Tensor]:
    """In the main process: the tensors of a worker's shared slot (see _SharedSlots)."""
    fd = df.detach()
    try:
        flag = mmap.mmap(fd, PAGE)
        mem = _Mapping(fd, size)
    finally:
        os.close(fd)
    weakref.finalize(mem, _release, flag)
    return {key: torch.from_numpy(v) for key, v in _views(mem, layout).items()}


def _release(flag: mmap.mmap) -> None:
    flag[0] = 0
    flag.close()


# -- the plan of an epoch -------------------------------------------------------------------------


def _hash64(*parts) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass
class _Plan:
    num_batches: int
    lanes: list[list[int]] | None = None  # stream: session indices of each lane, in order
    lane_starts: list[list[int]] | None = None  # stream: lane step at which each starts
    win_session: np.ndarray | None = None  # window: session index of each window
    win_start: np.ndarray | None = None  # window: first frame of each window


def split_key(session_id: str, summary: dict) -> str:
    """What decides a session's split: `repo@first_commit_index` from its manifest summary,
    neither of which depends on where DATA lives or on the render options (both part of the
    id); the id itself for manifests without them."""
    if "repo" in summary and "first_commit_index" in summary:
        return f"{summary['repo']}@{summary['first_commit_index']}"
    return session_id


@dataclass(frozen=True)
class SessionEntry:
    id: str
    shard: str
    num_frames: int
    key: str  # split_key: what orders, splits and shuffles it


class FrameStream(torch.utils.data.IterableDataset):
    """Batches of rendered sessions (module docstring; the README).

    source: a DATA path or a pyarrow filesystem URI (`s3://bucket/data?endpoint_override=...`).
    mode "stream": row b of consecutive batches is lane b, whole sessions back to back (sessions
        are dealt to the B x world_size lanes greedily, shortest lane first, in the epoch's
        shuffled order); the epoch lasts until the longest lane ends; lanes that end earlier are
        padded (mask False). mode "window": each session of at least T frames is cut into
        floor(n / T) windows at an offset drawn per (seed, epoch, session); shorter sessions are
        skipped, or with `pad_short` give one window padded with mask False; the windows of all
        sessions are shuffled and dealt B x world_size per global batch, the last one padded.
    split: sessions are held out ("eval") by a hash of their split key, a fraction
        `eval_fraction` (at least one session when there are two or more); "train" never yields
        them. The key is the repository and the session's first commit (`split_key`), which
        stay the same when DATA moves or is rendered again with other options.
    split_by "session" (the above) or "repo": whole repositories are held out instead, by a
        hash of the repository name, a fraction `eval_fraction` of the repositories (at least
        one; fewer than two repositories is an error), so that held-out loss is measured on
        code the model never saw. Sessions of one repository share files: split by session,
        they fall on both sides.
    rank/world_size: default to torch.distributed's when it is initialized, else 0/1. With a
        DataLoader of W workers, worker w makes batches w, w + W, ... (the order is the same for
        any W; iterate with batch_size=None).
    skip_bad_shards: a missing, truncated or corrupt shard raises GhframesError naming the shard
        and chunk; with this flag its session is masked out from there on instead and counted in
        `skipped` ({shard path: error}).
    """

    def __init__(
        self,
        source: str,
        batch_size: int,
        seq_len: int,
        mode: str = "stream",
        seed: int = 0,
        split: str = "train",
        rank: int | None = None,
        world_size: int | None = None,
        eval_fraction: float = 0.1,
        split_by: str = "session",
        pad_short: bool = False,
        skip_bad_shards: bool = False,
        cache_bytes: int = 256 << 20,
        filesystem: pafs.FileSystem | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise GhframesError(f"loader: unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        if split not in SPLITS:
            raise GhframesError(f"loader: unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if split_by not in SPLIT_BY:
            raise GhframesError(
                f"loader: unknown split_by {split_by!r}; valid: {', '.join(SPLIT_BY)}"
            )
        if batch_size < 1 or seq_len < 1:
            raise GhframesError(
                f"loader: batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}"
            )
        if rank is None or world_size is None:
            dist = torch.distributed
            on = dist.is_available() and dist.is_initialized()
            rank = dist.get_rank() if on else 0
            world_size = dist.get_world_size() if on else 1
        if not 0 <= rank < world_size:
            raise GhframesError(f"loader: rank {rank} is not in [0, {world_size})")
        self.source = source
        self.batch_size, self.seq_len, self.mode, self.seed = batch_size, seq_len, mode, seed
        self.split, self.rank, self.world_size = split, rank, world_size
        self.eval_fraction, self.split_by, self.pad_short = eval_fraction, split_by, pad_short
        self.skip_bad_shards, self.cache_bytes = skip_bad_shards, cache_bytes
        if filesystem is not None:
            self.fs, root = filesystem, source
        else:
            self.fs, root = shards.filesystem(source)
        self.root = f"{root.rstrip('/')}/{FRAMES_DIR}"
        self.remote = not isinstance(self.fs, pafs.LocalFileSystem)
        manifest = self._with_retries(
            f"{self.root}/{shards.MANIFEST}",
            lambda: shards.read_json(self.fs, f"{self.root}/{shards.MANIFEST}"),
        )
        if manifest is None:
            raise GhframesError(f"{source}: no rendered frames (run `ghframes render` first)")
        frames_schema().check_manifest(manifest, f"{self.root}/{shards.MANIFEST}")
        self.schema_version = str(manifest["version"])
        # Ordered, split and shuffled by their location-free keys (split_key), so that the same
        # histories give the same batches wherever they were crawled from.
        self.sessions = sorted(
            (
                SessionEntry(sid, s["shard"], int(s["num_frames"]), split_key(sid, s))
                for sid, s in manifest["sessions"].items()
            ),
            key=lambda e: (e.key, e.id),
        )
        self.session_ids = [s.id for s in self.sessions]
        if split_by == "session":
            held = self.held_out({s.id: s.key for s in self.sessions}, eval_fraction)
        else:
            held = self.held_out_repos(self._repos(manifest["sessions"]), eval_fraction)
        self.split_sessions = [
            i for i, s in enumerate(self.sessions) if (s.id in held) == (split == "eval")
        ]
        if not self.split_sessions:
            raise GhframesError(f"{source}: no sessions in split {split!r}")
        self.char_vocab = CHAR_VOCAB
        self.action_names = list(ACTION_NAMES)
        self.epoch = 0
        self.batch = 0
        self.skipped: dict[str, str] = {}
        self._plan_cache: tuple[int, _Plan] | None = None
        self._shards: dict[int, _Shard] = {}  # layouts of the shards seen
        self._open_files: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._parts: collections.OrderedDict[tuple[int, int], _Part] = collections.OrderedDict()
        self._parts_bytes = 0
        # session -> per chunk, for the whole chunk then each segment: 0 unknown, 1 ASCII, 2 not
        self._ascii: dict[int, np.ndarray] = {}
        self._bad: dict[int, str] = {}
        self._chunk_cache: dict = {}  # slot -> (session, chunk, zstd frame, decoded ids)
        self._scratch: dict = {}
        self._pool: list[dict[str, np.ndarray]] = []
        self._shared: _SharedSlots | None = None  # in a DataLoader worker

    # -- contract -------------------------------------------------------------------------------

    @staticmethod
    def held_out(split_keys: dict[str, str], fraction: float) -> set[str]:
        """The eval sessions of {session id: split key}: hash(key) below `fraction` (the
        session with the lowest hash if that holds out none and there are >= 2)."""
        hashes = {
            sid: (_hash64("ghframes-split", key) / 2.0**64, sid) for sid, key in split_keys.items()
        }
        held = {sid for sid, (h, _) in hashes.items() if h < fraction}
        if not held and fraction > 0 and len(hashes) >= 2:
            held = {min(hashes, key=hashes.get)}
        return held

    @staticmethod
    def held_out_repos(repos: dict[str, str], fraction: float) -> set[str]:
        """The eval sessions of {session id: repository name}: every session of the
        repositories that `held_out` picks among the names (keyed by the name alone)."""
        held = FrameStream.held_out({repo: repo for repo in repos.values()}, fraction)
        return {sid for sid, repo in repos.items() if repo in held}

    def _repos(self, summaries: dict[str, dict]) -> dict[str, str]:
        """{session id: repository} of the manifest, for split_by="repo" (two or more)."""
        manifest = f"{self.root}/{shards.MANIFEST}"
        for s in self.sessions:
            if "repo" not in summaries[s.id]:
                raise GhframesError(
                    f"{manifest}: session {s.id} names no repo; split_by='repo' needs the "
                    "repository of every session (render again, or use split_by='session')"
                )
        repos = {s.id: summaries[s.id]["repo"] for s in self.sessions}
        names = sorted(set(repos.values()))
        if len(names) == 1:
            raise GhframesError(
                f"{self.source}: split_by='repo' needs at least two repositories; every "
                f"session is of {names[0]!r} (use split_by='session')"
            )
        return repos

    @property
    def max_seq_len(self) -> int | None:
        if self.mode == "stream":
            return None
        return max(self.sessions[i].num_frames for i in self.split_sessions)

    def _settings(self) -> dict:
        return {
            "seed": self.seed,
            "mode": self.mode,
            "split": self.split,
            "split_by": self.split_by,
            "rank": self.rank,
            "world_size": self.world_size,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
        }

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, **self._settings()}

    def load_state_dict(self, state: dict) -> None:
        state = {"split_by": "session", **state}  # states from before split_by: by session
        mine = self._settings()
        diff = [
            f"{k} {state[k]!r} (state) vs {v!r}"
            for k, v in mine.items()
            if k in state and state[k] != v
        ]
        if diff:
            raise GhframesError("loader state is of another configuration: " + ", ".join(diff))
        self.set_epoch(int(state["epoch"]))
        self.batch = int(state["batch"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.batch = int(epoch), 0
        self._chunk_cache.clear()

    def __len__(self) -> int:
        """Batches in the current epoch (for this rank)."""
        return self._plan().num_batches

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None and self._shared is None and hasattr(os, "memfd_create"):
            self._shared = _SharedSlots(self._shapes())
        plan = self._plan()
        while self.batch < plan.num_batches:
            k = self.batch
            self.batch += 1
            if k % workers == worker:
                yield self._make(plan, k, shared=info is not None)

    # -- order ----------------------------------------------------------------------------------

    def _plan(self) -> _Plan:
        if self._plan_cache is not None and self._plan_cache[0] == self.epoch:
            return self._plan_cache[1]
        order = sorted(
            self.split_sessions,
            key=lambda i: (_hash64("order", self.seed, self.epoch, self.sessions[i].key), i),
        )
        lanes_total = self.batch_size * self.world_size
        if self.mode == "stream":
            heap = [(0, lane) for lane in range(lanes_total)]
            lanes: list[list[int]] = [[] for _ in range(lanes_total)]
            starts: list[list[int]] = [[] for _ in range(lanes_total)]
            for i in order:
                total, lane = heapq.heappop(heap)
                lanes[lane].append(i)
                starts[lane].append(total)
                heapq.heappush(heap, (total + self.sessions[i].num_frames, lane))
            longest = max(total for total, _ in heap)
            plan = _Plan(math.ceil(longest / self.seq_len), lanes=lanes, lane_starts=starts)
        else:
            sess, begin = [], []
            t = self.seq_len
            for i in order:
                n = self.sessions[i].num_frames
                if n >= t:
                    m = n // t
                    off = _hash64("offset", self.seed, self.epoch, self.sessions[i].key) % (
                        n - m * t + 1
                    )
                    sess += [i] * m
                    begin += range(off, off + m * t, t)
                elif self.pad_short:
                    sess.append(i)
                    begin.append(0)
            rng = np.random.Generator(np.random.PCG64(_hash64("windows", self.seed, self.epoch)))
            perm = rng.permutation(len(sess))
            plan = _Plan(
                math.ceil(len(sess) / lanes_total),
                win_session=np.asarray(sess, np.int64)[perm],
                win_start=np.asarray(begin, np.int64)[perm],
            )
        self._plan_cache = (self.epoch, plan)
        return plan

    # -- batches --------------------------------------------------------------------------------

    def _make(self, plan: _Plan, k: int, shared: bool = False) -> dict[str, torch.Tensor]:
        b, t = self.batch_size, self.seq_len
        shm = self._shared.acquire() if shared and self._shared is not None else None
        out = self._buffers() if shm is None else self._reset(shm[1])
        for row in range(b):
            if self.mode == "stream":
                lane = self.rank * b + row
                sessions, starts = plan.lanes[lane], plan.lane_starts[lane]
                begin, end = k * t, (k + 1) * t
                j = max(bisect.bisect_right(starts, begin) - 1, 0)
                while j < len(sessions) and starts[j] < end:
                    i, s0 = sessions[j], starts[j]
                    lo, hi = max(begin, s0) - s0, min(end, s0 + self.sessions[i].num_frames) - s0
                    if hi > lo:
                        self._fill(out, row, s0 + lo - begin, i, lo, hi, slot=row)
                    j += 1
            else:
                w = (k * self.world_size + self.rank) * b + row
                if w >= len(plan.win_session):
                    continue
                i, lo = int(plan.win_session[w]), int(plan.win_start[w])
                hi = min(lo + t, self.sessions[i].num_frames)
                self._fill(out, row, 0, i, lo, hi, slot=row)
                out["reset"][row, 0] = True
        for row in range(b):
            if not out["mask"][row].all():
                out["frames"][row, ~out["mask"][row]] = 0
        tensors = {key: torch.from_numpy(v) for key, v in out.items()}
        return tensors if shm is None else _SharedBatch(tensors, shm[0], self._shared)

    def _shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        b, t = self.batch_size, self.seq_len
        return {
            "frames": ((b, t, ROWS, COLS), "u1"),  # padding zeroed by _make
            "actions": ((b, t), "i8"),
            "cursor": ((b, t, 2), "i8"),
            "reset": ((b, t), "?"),
            "mask": ((b, t), "?"),
            "session": ((b, t), "i8"),
            "t": ((b, t), "i8"),
        }

    def _buffers(self) -> dict[str, np.ndarray]:
        """Batch arrays, reset to padding: a pooled set no tensor refers to any more (the tensors
        handed out keep their arrays alive, so a set in use is never reused), else a new one.
        Reuse avoids the page faults of fresh memory, which cost as much as decoding."""
        for bufs in self._pool:
            if all(sys.getrefcount(v) <= 3 for v in bufs.values()):  # dict, v, argument
                break
        else:
            bufs = {key: np.empty(shape, dtype) for key, (shape, dtype) in self._shapes().items()}
            if len(self._pool) < 4:
                self._pool.append(bufs)
        return self._reset(bufs)

    @staticmethod
    def _reset(bufs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for key in ("actions", "cursor", "reset", "mask"):
            bufs[key].fill(0)
        bufs["session"].fill(-1)
        bufs["t"].fill(-1)
        return bufs

    def _fill(self, out: dict, row: int, col: int, i: int, lo: int, hi: int, slot: int) -> None:
        """Frames [lo, hi) of session i into `row` of the batch from column `col`."""
        n = hi - lo
        try:
            shard = self._shard(i, lo)
            ascii_ = self._ascii.get(i)
            if ascii_ is None:
                segments = FRAMES_PER_CHUNK // FRAMES_PER_SEGMENT
                ascii_ = self._ascii[i] = np.zeros((shard.num_chunks, 1 + segments), np.int8)
            frames = out["frames"][row, col : col + n]
            c = lo // FRAMES_PER_CHUNK
            while c * FRAMES_PER_CHUNK < hi:
                part = self._part(i, shard, c)
                c0 = c * FRAMES_PER_CHUNK
                c1 = min(c0 + FRAMES_PER_CHUNK, shard.num_frames)
                a, z = max(lo, c0), min(hi, c1)
                dest = frames[a - lo : z - lo]
                if a == c0 and z == c1:  # the whole chunk: straight into the batch
                    part.decode(c, dest, self._scratch, ascii_)
                else:  # a part: the chunk's segments inside [a, z) straight in, one cut, cached
                    self._fill_segments(part, i, c, c0, c1, a, z, dest, slot, ascii_)
                f = part.first
                out["actions"][row, col + a - lo : col + z - lo] = part.actions[a - f : z - f]
                out["cursor"][row, col + a - lo : col + z - lo] = part.cursor[a - f : z - f]
                c += 1
        except GhframesError as exc:
            if not self.skip_bad_shards:
                raise
            self._bad[i] = str(exc)
            self.skipped.setdefault(f"{self.root}/{self.sessions[i].shard}", str(exc))
            out["actions"][row, col : col + n] = 0  # padding, as if never filled
            out["cursor"][row, col : col + n] = 0
            return  # mask stays False: frames zeroed by _make
        out["mask"][row, col : col + n] = True
        out["session"][row, col : col + n] = i
        out["t"][row, col : col + n] = np.arange(lo, hi)
        if lo == 0:
            out["reset"][row, col] = True

    def _fill_segments(
        self, part: _Part, i: int, c: int, c0: int, c1: int, a: int, z: int, dest, slot, ascii_
    ) -> None:
        """Frames [a, z) of chunk c (frames [c0, c1)) into `dest`: each segment of the chunk
        (codec.py) that lies inside goes straight in; one that straddles a or z is decoded once
        into this slot's buffer (the lane's next batch takes the rest from there) and copied."""
        ranges = part.segment_bytes(c)
        step = FRAMES_PER_SEGMENT if len(ranges) > 1 else c1 - c0  # one: a chunk before segments
        if len(ranges) != -(-(c1 - c0) // step):
            raise GhframesError(
                f"{part.path}: chunk {c}: {len(ranges)} segments for {c1 - c0} frames "
                f"(expected one per {FRAMES_PER_SEGMENT})"
            )
        for j in range(len(ranges)):
            p0 = c0 + j * step
            p1 = min(p0 + step, c1)
            u, v = max(a, p0), min(z, p1)
            if u >= v:
                continue
            if u == p0 and v == p1:
                part.decode(c, dest[u - a : v - a], self._scratch, ascii_, segment=j)
                continue
            cached = self._chunk_cache.get(slot)
            if cached is None or cached[:3] != (i, c, j):
                buf = cached[3] if cached is not None else None
                if buf is None or buf.shape[0] < p1 - p0:
                    buf = np.empty((max(FRAMES_PER_CHUNK, p1 - p0), ROWS, COLS), np.uint8)
                self._chunk_cache.pop(slot, None)
                part.decode(c, buf[: p1 - p0], self._scratch, ascii_, segment=j)
                self._chunk_cache[slot] = cached = (i, c, j, buf)
            dest[u - a : v - a] = cached[3][u - p0 : v - p0]

    # -- shards ---------------------------------------------------------------------------------

    def _with_retries(self, path: str, read):
        """`read()`, tried again up to RETRIES times after a transient error (an OSError other
        than a missing file) on remote storage, waiting RETRY_DELAY, then twice as long, ..."""
        for attempt in range(RETRIES + 1):
            try:
                return read()
            except FileNotFoundError:
                raise
            except OSError:
                if not self.remote or attempt == RETRIES:
                    raise
                time.sleep(RETRY_DELAY * 2**attempt)

    def _read_error(self, where: str, exc: Exception) -> GhframesError:
        if self.remote and isinstance(exc, OSError):  # retried: RETRIES + 1 attempts in all
            return GhframesError(f"{where}: read failed after {RETRIES + 1} attempts ({exc})")
        return GhframesError(f"{where}: damaged shard ({exc})")

    def _open(self, i: int, frame: int) -> pq.ParquetFile:
        """Session i's shard file, its footer read (`frame`: the one about to be read)."""
        entry = self.sessions[i]
        path = f"{self.root}/{entry.shard}"
        where = f"{path}: chunk {frame // FRAMES_PER_CHUNK}"

        def read() -> pq.ParquetFile:
            # pre_buffer: a row group's column chunks in one read (one request on S3)
            return pq.ParquetFile(self.fs.open_input_file(path), pre_buffer=True)

        try:
            file = self._with_retries(path, read)
        except FileNotFoundError:
            raise GhframesError(f"{where}: shard is missing (session {entry.id})") from None
        except (pa.ArrowInvalid, OSError) as exc:
            raise self._read_error(where, exc) from None
        self._open_files[i] = None
        while len(self._open_files) > max(OPEN_SHARDS, 2 * self.batch_size):
            old, _ = self._open_files.popitem(last=False)
            if old in self._shards:
                self._shards[old].file = None  # its layout stays known
        return file

    def _shard(self, i: int, frame: int) -> _Shard:
        """Session i's shard layout (read from its footer the first time)."""
        if i in self._bad:
            raise GhframesError(self._bad[i])
        shard = self._shards.get(i)
        if shard is None:
            file = self._open(i, frame)
            path = f"{self.root}/{self.sessions[i].shard}"
            shard = self._shards[i] = _Shard(file, path, self.sessions[i].num_frames)
        return shard

    def _part(self, i: int, shard: _Shard, k: int) -> _Part:
        """The row group of session i holding chunk k: read (only its byte range) and cached."""
        r = shard.group_of(k)
        key = (i, r)
        part = self._parts.get(key)
        if part is not None:
            self._parts.move_to_end(key)
            return part
        if shard.file is None:
            shard.file = self._open(i, k * FRAMES_PER_CHUNK)
        else:
            self._open_files.move_to_end(i)
        file = shard.file
        try:
            table = self._with_retries(
                shard.path, lambda: file.read_row_group(r, columns=COLUMNS, use_threads=False)
            )
            part = _Part(table, shard, shard.group_first[r])
        except GhframesError:
            raise
        except (pa.ArrowInvalid, OSError, KeyError, ValueError) as exc:
            raise self._read_error(f"{shard.path}: chunk {k}", exc) from None
        self._parts[key] = part
        self._parts_bytes += part.nbytes
        while self._parts_bytes > self.cache_bytes and len(self._parts) > 2 * self.batch_size:
            _, old = self._parts.popitem(last=False)
            self._parts_bytes -= old.nbytes
        return part
