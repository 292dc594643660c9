"""The streaming dataloader: rendered frame shards (DATA/frames) into training batches.

`FrameStream(source, batch_size, seq_len, mode, seed, split, rank, world_size, ...)` is a
`torch.utils.data.IterableDataset` of batch dicts (see `FrameStream` and the README, "The streaming dataloader"):

    frames  uint8 [B, T, 48, 160]  character ids (schemas/chars.json), 0 where mask is False
    fg, bg  uint8 [B, T, 48, 160]  colour of each cell: 0 the default, 1..255 the xterm-256
                                   palette index (schemas/frames.json `fg`), 0 where mask is
                                   False and in a shard before frames schema 2.0
    attrs   uint8 [B, T, 48, 160]  attribute bits (1 bold, 2 italic, 4 underline, 8 reverse,
                                   16 strikethrough, 32 blink), 0 likewise
    actions long  [B, T]           action ids (index into `action_names`)
    cursor  long  [B, T, 2]        (row, col)
    dt      int32 [B, T]           ms frame t was on screen before action t (schemas/frames.json
                                   `dt`, at most 65,535); 0 where mask is False, and 0 for every
                                   frame of a shard before frames schema 1.3, which has no times
    reset   bool  [B, T]           a session (stream) or a window (window mode) starts here
    mask    bool  [B, T]           real data (False: padding)
    session long  [B, T]           index into `session_ids` (-1: padding)
    t       long  [B, T]           frame index in its session (-1: padding)

With actions="tokens" (tokens.py), `actions` holds the id of the typed-text token that starts at
each step, `mask` is also False inside a token (its frames are real: session >= 0), and
`keys` long [B, T] holds the key ids that `actions` holds with actions="keys".

The order of an epoch is a pure function of (session ids and sizes from the manifest, seed,
epoch), planned in plan.py; `state_dict()` is {epoch, batch} plus the settings it is valid for.
Shards are read a row group at a time through the frame-shard reader (ghframes.store.reader,
then parts.py), each chunk's zstd frames decoded straight into the batch; DataLoader workers
fill batches in shared memory (slots.py). The colour planes are read and decoded only for the
`channels` asked for (FrameStream).
"""

from __future__ import annotations

import bisect
import collections
import functools
import os
import sys
from dataclasses import dataclass

import numpy as np
import pyarrow.fs as pafs
import torch

from ghframes.errors import GhframesError
from ghframes.store import shards
from ghframes.store.codec import FRAMES_PER_CHUNK, FRAMES_PER_SEGMENT
from ghframes.store.frames import FRAMES_DIR, frames_schema
from ghframes.store.geometry import COLS, ROWS
from ghframes.store.planes import PLANES, SegmentDecoder
from ghframes.store.reader import FrameShard

from .chars import ACTION_NAMES, CHAR_VOCAB
from .parts import Part, fill_from_segments
from .plan import (
    MODES,
    SPLIT_BY,
    SPLITS,
    EpochPlan,
    check_position,
    data_key,
    held_out,
    held_out_repos,
    lane_of,
    plan_epoch,
    session_repos,
    split_key,
    window_of,
    worker_of,
)
from .slots import SharedBatch, SharedSlots
from .tokens import ACTIONS, TOKEN_VOCAB, Tokenizer, TokenTable

RETRIES = 3  # attempts after the first on a transient (OSError) read failure of a remote shard
RETRY_DELAY = 0.1  # seconds before the first retry; doubled before each next one
OPEN_SHARDS = 64  # shard files kept open (most recently read); layouts of all are kept
CHANNELS = ("chars", *PLANES)  # what a batch can hold of each frame: "frames" and the planes


@dataclass(frozen=True)
class SessionEntry:
    id: str
    shard: str
    num_frames: int
    key: str  # split_key: what orders, splits and shuffles it


class FrameStream(torch.utils.data.IterableDataset):
    """Batches of rendered sessions (module docstring; the README).

    source: a DATA path or a pyarrow filesystem URI (`s3://bucket/data?endpoint_override=...`).
    mode "stream": row b of consecutive batches is lane b, whole sessions back to back; the
        epoch lasts until the longest lane ends, and lanes that end earlier are padded (mask
        False). mode "window": floor(n / T) windows of each session of n >= T frames, shuffled
        (shorter sessions skipped, or with `pad_short` one window each, padded), the last batch
        padded. How sessions are dealt to the B x world_size rows: plan.plan_epoch.
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
    epochs: iterating again after an epoch has ended starts the next epoch (reshuffled), as
        mosaicml streaming does, so `for epoch in range(3): for batch in stream:` trains three
        epochs; `set_epoch(e)` picks epoch e instead. A DataLoader's workers each iterate a copy
        made when they start: with persistent_workers=True the copies continue with the next
        epoch too; otherwise call set_epoch before each epoch (as with DistributedSampler).
    state_dict(): {epoch, batch} and the settings and data it is valid for; load_state_dict
        refuses a state of other ones and continues exactly (at an epoch's end: the next one).
    skip_bad_shards: a missing, truncated or corrupt shard raises GhframesError naming the shard
        and chunk; with this flag its session is masked out from there on instead and counted in
        `skipped` ({shard path: error}).
    channels: what the batches hold of each frame, from CHANNELS: "chars" (the `frames` key,
        always) and the colour planes "fg", "bg", "attrs" (keys of their own). Default: all four
        when the dataset is of frames schema 2.0 or later (its manifest's version), else chars
        only, so that every batch of a dataset has the same keys; a 1.x shard in a 2.0 dataset
        gives zeros for its planes (and the reader logs that it has no colour). A plane not asked
        for is neither read nor decoded.
    actions: "keys" (one action per step) or "tokens": typed-text tokens (module docstring) of
        `tokenizer`, else of one trained on the train split's key streams (`token_vocab` tokens
        at most); `self.tokenizer` is the one used (None with keys).
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
        channels: tuple[str, ...] | list[str] | None = None,
        actions: str = "keys",
        tokenizer: Tokenizer | None = None,
        token_vocab: int = TOKEN_VOCAB,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise GhframesError(f"loader: unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        if split not in SPLITS:
            raise GhframesError(f"loader: unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if actions not in ACTIONS:
            raise GhframesError(f"loader: unknown actions {actions!r}; valid: {', '.join(ACTIONS)}")
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
        self.retries = shards.Retries(RETRIES if self.remote else 0, RETRY_DELAY)
        where = f"{self.root}/{shards.MANIFEST}"  # names it in errors (an older one's too)
        manifest = shards.read_manifest(self.fs, self.root, frames_schema(), self.retries)
        if manifest is None:
            raise GhframesError(f"{source}: no rendered frames (run `ghframes render` first)")
        self.schema_version = str(manifest["version"])
        self.channels = self._channels(channels)
        self.planes = [name for name in PLANES if name in self.channels]  # colour asked for
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
            held = held_out({s.id: s.key for s in self.sessions}, eval_fraction)
        else:
            summaries = {s.id: manifest["sessions"][s.id] for s in self.sessions}
            repos = session_repos(summaries, where, source)
            held = held_out_repos(repos, eval_fraction)
        self.split_indices = [
            i for i, s in enumerate(self.sessions) if (s.id in held) == (split == "eval")
        ]
        self.train_indices = [i for i, s in enumerate(self.sessions) if s.id not in held]
        if not self.split_indices:
            raise GhframesError(f"{source}: no sessions in split {split!r}")
        self.data_key = data_key([self.sessions[i] for i in self.split_indices])
        self.char_vocab = CHAR_VOCAB
        self.action_names = list(ACTION_NAMES)
        self.epoch = 0
        self.batch = 0
        self.skipped: dict[str, str] = {}
        self._plan_cache: tuple[int, EpochPlan] | None = None
        self._shards: dict[int, FrameShard] = {}  # layouts of the shards seen
        self._open_files: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._parts: collections.OrderedDict[tuple[int, int], Part] = collections.OrderedDict()
        self._parts_bytes = 0
        # session -> per chunk, for the whole chunk then each segment: 0 unknown, 1 ASCII, 2 not
        self._ascii: dict[int, np.ndarray] = {}
        self._bad: dict[int, str] = {}
        # (slot, key) -> ((session, chunk), zstd frame): the segment a lane cut, decoded
        self._chunk_cache: dict = {}
        self._scratch: dict = {}
        self._pool: list[dict[str, np.ndarray]] = []
        self._shared: SharedSlots | None = None  # in a DataLoader worker
        self._decoder = SegmentDecoder()  # of the colour planes: a buffer for one segment
        self.actions = actions
        self.tokens = TokenTable(self, tokenizer, token_vocab) if actions == "tokens" else None
        self.tokenizer = None if self.tokens is None else self.tokens.tokenizer

    def _channels(self, channels) -> tuple[str, ...]:
        """The channels asked for, checked; None: those of the dataset's schema version."""
        if channels is None:
            major = self.schema_version.split(".")[0]
            return CHANNELS if major.isdigit() and int(major) >= 2 else ("chars",)
        channels = tuple(channels)
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown or "chars" not in channels or len(set(channels)) != len(channels):
            what = f"unknown channel {unknown[0]!r}" if unknown else "channels must name"
            what += "" if unknown else " 'chars' and each channel once"
            raise GhframesError(
                f"loader: {what} in {channels!r}; valid channels: {', '.join(CHANNELS)}"
            )
        return tuple(c for c in CHANNELS if c in channels)

    # -- contract -------------------------------------------------------------------------------

    @property
    def max_seq_len(self) -> int | None:
        if self.mode == "stream":
            return None
        return max(self.sessions[i].num_frames for i in self.split_indices)

    def _settings(self) -> dict:
        """What a position is valid for: the configuration and the split's data (`data_key`)."""
        return {
            "seed": self.seed, "mode": self.mode, "split": self.split, "split_by": self.split_by,
            "rank": self.rank, "world_size": self.world_size, "batch_size": self.batch_size,
            "seq_len": self.seq_len, "pad_short": self.pad_short, "data": self.data_key,
            **({"actions": self.actions} if self.tokens is not None else {}),
        }  # fmt: skip

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, **self._settings()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a `state_dict()` (plan.check_position refuses one of other settings)."""
        where = f"split {self.split!r} of {self.source}"
        self.set_epoch(check_position(state, self._settings(), where)[0])
        self.batch = state["batch"]

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
            self._shared = SharedSlots(self._shapes())
        plan = self._plan()
        if 0 < plan.num_batches <= self.batch:  # this epoch is over: iterating again is the next
            self.set_epoch(self.epoch + 1)
            plan = self._plan()
        while self.batch < plan.num_batches:
            k = self.batch
            self.batch += 1
            if worker_of(k, workers) == worker:
                yield self._make(plan, k, shared=info is not None)

    # -- order ----------------------------------------------------------------------------------

    def _plan(self) -> EpochPlan:
        if self._plan_cache is None or self._plan_cache[0] != self.epoch:
            plan = plan_epoch(
                self.mode,
                [s.key for s in self.sessions],
                [s.num_frames for s in self.sessions],
                self.split_indices,
                self.seed,
                self.epoch,
                num_lanes=self.batch_size * self.world_size,
                seq_len=self.seq_len,
                pad_short=self.pad_short,
            )
            self._plan_cache = (self.epoch, plan)
        return self._plan_cache[1]

    # -- batches --------------------------------------------------------------------------------

    def _make(self, plan: EpochPlan, k: int, shared: bool = False) -> dict[str, torch.Tensor]:
        b, t = self.batch_size, self.seq_len
        shm = self._shared.acquire() if shared and self._shared is not None else None
        out = self._buffers() if shm is None else self._reset(shm[1])
        for row in range(b):
            if self.mode == "stream":
                lane = lane_of(self.rank, row, b)
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
                w = window_of(k, self.rank, row, b, self.world_size)
                if w >= len(plan.win_session):
                    continue
                i, lo = int(plan.win_session[w]), int(plan.win_start[w])
                hi = min(lo + t, self.sessions[i].num_frames)
                self._fill(out, row, 0, i, lo, hi, slot=row)
                out["reset"][row, 0] = True
        for row in range(b):
            if not out["mask"][row].all():
                for key in ("frames", *self.planes):
                    out[key][row, ~out["mask"][row]] = 0
        if self.tokens is not None:
            self.tokens.apply(out)
        tensors = {key: torch.from_numpy(v) for key, v in out.items()}
        return tensors if shm is None else SharedBatch(tensors, shm[0], self._shared)

    def _shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        b, t = self.batch_size, self.seq_len
        return {
            "frames": ((b, t, ROWS, COLS), "u1"),  # padding zeroed by _make
            **{name: ((b, t, ROWS, COLS), "u1") for name in self.planes},  # the same
            "actions": ((b, t), "i8"),
            "cursor": ((b, t, 2), "i8"),
            "dt": ((b, t), "i4"),  # uint16 ms: int32 holds it, and torch has no uint16 math
            "reset": ((b, t), "?"),
            "mask": ((b, t), "?"),
            "session": ((b, t), "i8"),
            "t": ((b, t), "i8"),
            **({"keys": ((b, t), "i8")} if self.tokens is not None else {}),
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
        for key in ("actions", "cursor", "dt", "reset", "mask"):
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
            c = lo // FRAMES_PER_CHUNK
            while c * FRAMES_PER_CHUNK < hi:
                part = self._part(i, shard, c)
                c0 = c * FRAMES_PER_CHUNK
                c1 = min(c0 + FRAMES_PER_CHUNK, shard.num_frames)
                a, z = max(lo, c0), min(hi, c1)
                for key in ("frames", *self.planes):
                    dest = out[key][row, col + a - lo : col + z - lo]
                    decode = functools.partial(part.into, key, c, self._scratch, ascii_)
                    if a == c0 and z == c1:  # the whole chunk: straight into the batch
                        decode(None, dest)
                    else:  # a part: the chunk's segments inside [a, z) straight in, one cut
                        spans = part.spans(key, c)
                        cache = self._chunk_cache
                        rows = functools.partial(part.rows, key, c) if part.has_rows(key) else None
                        fill_from_segments(
                            spans, c0, a, z, dest, decode, cache, (slot, key), (i, c), rows
                        )
                f = part.first
                out["actions"][row, col + a - lo : col + z - lo] = part.actions[a - f : z - f]
                out["cursor"][row, col + a - lo : col + z - lo] = part.cursor[a - f : z - f]
                if part.dt is not None:  # else the shard has no times: dt stays 0
                    out["dt"][row, col + a - lo : col + z - lo] = part.dt[a - f : z - f]
                c += 1
        except GhframesError as exc:
            if not self.skip_bad_shards:
                raise
            self.mark_bad(i, str(exc))
            out["actions"][row, col : col + n] = 0  # padding, as if never filled
            out["cursor"][row, col : col + n] = 0
            out["dt"][row, col : col + n] = 0
            return  # mask stays False: frames zeroed by _make
        out["mask"][row, col : col + n] = True
        out["session"][row, col : col + n] = i
        out["t"][row, col : col + n] = np.arange(lo, hi)
        if lo == 0:
            out["reset"][row, col] = True

    # -- shards ---------------------------------------------------------------------------------

    def _shard(self, i: int, frame: int) -> FrameShard:
        """Session i's shard, opened (its layout read from the footer) the first time; errors
        name the chunk of `frame`, the one about to be read."""
        if i in self._bad:
            raise GhframesError(self._bad[i])
        shard = self._shards.get(i)
        if shard is None:
            entry = self.sessions[i]
            path = f"{self.root}/{entry.shard}"
            shard = FrameShard(
                self.fs,
                path,
                entry.num_frames,
                where=f"{path}: chunk {frame // FRAMES_PER_CHUNK}",
                pre_buffer=True,
                retries=self.retries,
                colours=bool(self.planes),
            )
            self._shards[i] = shard
            self._opened(i)
        return shard

    def mark_bad(self, i: int, error: str) -> None:
        """Skip session i from here on (skip_bad_shards), its shard counted in `skipped`."""
        self._bad[i] = error
        self.skipped.setdefault(f"{self.root}/{self.sessions[i].shard}", error)

    def _opened(self, i: int) -> None:
        """Count session i's shard file as open and the most recent; close the least recently
        read past OPEN_SHARDS (their layouts stay known)."""
        self._open_files[i] = None
        while len(self._open_files) > max(OPEN_SHARDS, 2 * self.batch_size):
            old, _ = self._open_files.popitem(last=False)
            self._shards[old].close()

    def _part(self, i: int, shard: FrameShard, k: int) -> Part:
        """The row group of session i holding chunk k: read (only its byte range) and cached."""
        r = shard.group_of(k)
        key = (i, r)
        part = self._parts.get(key)
        if part is not None:
            self._parts.move_to_end(key)
            return part
        where = f"{shard.path}: chunk {k}"
        if shard.file is None:
            shard.reopen(where)
            self._opened(i)
        else:
            self._open_files.move_to_end(i)
        part = Part(shard.read_group(r, where=where), self._decoder)
        self._parts[key] = part
        self._parts_bytes += part.nbytes
        while self._parts_bytes > self.cache_bytes and len(self._parts) > 2 * self.batch_size:
            _, old = self._parts.popitem(last=False)
            self._parts_bytes -= old.nbytes
        return part
