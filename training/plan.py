"""The loader's plan: which sessions are held out, and the order of an epoch's batches.

Everything here is a pure function of (session split keys and sizes, seed, epoch, batch size,
world size), so that any process computes the same plan and a loader's position is a few
integers (FrameStream.state_dict, checked by `check_position`). Ranks and DataLoader workers
then take disjoint parts of one plan: rank r fills lanes [r * B, (r + 1) * B) (stream) or row
block r of every global batch (window); worker w of W makes batches w, w + W, ...
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ghframes.errors import GhframesError

MODES = ("stream", "window")
SPLITS = ("train", "eval")
SPLIT_BY = ("session", "repo")  # what the held-out split holds out whole


def hash64(*parts) -> int:
    """A 64-bit hash of `parts` (their str, ':'-joined) that every process and run agrees on."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def repository_of(summary: dict) -> str | None:
    """The repository a session's manifest summary is of: its history's `root` commit (the same
    wherever the repository was crawled from, and two folders both named `repo` are two roots;
    forks share a root, and the crawl mines only one of them), else its `key` (DATA/edits' key,
    unique per repository crawled), else its `repo` name; None when it names none of them."""
    return summary.get("root") or summary.get("key") or summary.get("repo")


def split_key(session_id: str, summary: dict) -> str:
    """What decides a session's split: `repository@first_commit_index` from its manifest
    summary (`repository_of`), neither of which depends on where DATA lives or on the render
    options (both part of the id); the id itself for manifests without them."""
    repository = repository_of(summary)
    if repository and "first_commit_index" in summary:
        return f"{repository}@{summary['first_commit_index']}"
    return session_id


def held_out(split_keys: dict[str, str], fraction: float) -> set[str]:
    """The eval sessions of {session id: split key}: hash(key) below `fraction` (the session
    with the lowest hash if that holds out none and there are >= 2)."""
    hashes = {
        sid: (hash64("ghframes-split", key) / 2.0**64, sid) for sid, key in split_keys.items()
    }
    held = {sid for sid, (h, _) in hashes.items() if h < fraction}
    if not held and fraction > 0 and len(hashes) >= 2:
        held = {min(hashes, key=hashes.get)}
    return held


def held_out_repos(repos: dict[str, str], fraction: float) -> set[str]:
    """The eval sessions of {session id: repository name}: every session of the repositories
    that `held_out` picks among the names (keyed by the name alone)."""
    held = held_out({repo: repo for repo in repos.values()}, fraction)
    return {sid for sid, repo in repos.items() if repo in held}


def session_repos(summaries: dict[str, dict], manifest: str, source: str) -> dict[str, str]:
    """{session id: repository} of the manifest's {session id: summary}, for split_by="repo",
    which needs the repository of every session and two or more repositories."""
    for sid, summary in summaries.items():
        if not repository_of(summary):
            raise GhframesError(
                f"{manifest}: session {sid} names no repo; split_by='repo' needs the "
                "repository of every session (render again, or use split_by='session')"
            )
    repos = {sid: repository_of(summary) for sid, summary in summaries.items()}
    if len(set(repos.values())) == 1:
        name = next(s.get("repo") or repository_of(s) for s in summaries.values())
        raise GhframesError(
            f"{source}: split_by='repo' needs at least two repositories; every "
            f"session is of {name!r} (use split_by='session')"
        )
    return repos


def epoch_order(keys: Sequence[str], indices: Sequence[int], seed: int, epoch: int) -> list[int]:
    """`indices` (into `keys`, the sessions' split keys) in the shuffled order of `epoch`."""
    return sorted(indices, key=lambda i: (hash64("order", seed, epoch, keys[i]), i))


@dataclass
class EpochPlan:
    """The batches of one epoch, for every rank.

    stream: `lanes[l]` the session indices lane l plays in order, `lane_starts[l]` the lane step
        at which each starts (batch k holds steps [k * T, (k + 1) * T) of every lane).
    window: `win_session[w]`, `win_start[w]`: the session index and first frame of window w
        (global batch k, rank r, row b: window `window_of(k, r, b, ...)`).
    """

    num_batches: int
    lanes: list[list[int]] | None = None
    lane_starts: list[list[int]] | None = None
    win_session: np.ndarray | None = None
    win_start: np.ndarray | None = None


def plan_epoch(
    mode: str,
    keys: Sequence[str],
    sizes: Sequence[int],
    indices: Sequence[int],
    seed: int,
    epoch: int,
    num_lanes: int,
    seq_len: int,
    pad_short: bool = False,
) -> EpochPlan:
    """The plan of `epoch` over the sessions `indices` (into `keys`: split keys, `sizes`: frames)
    for `num_lanes` = batch size x world size rows of T = `seq_len` steps.

    stream: sessions are dealt to the lanes greedily, shortest lane first, in the epoch's order;
        the epoch lasts until the longest lane ends.
    window: each session of at least T frames gives floor(n / T) windows at an offset drawn per
        (seed, epoch, session); a shorter one gives one window from frame 0 with `pad_short`,
        else none; all windows are shuffled and dealt `num_lanes` per global batch.
    """
    order = epoch_order(keys, indices, seed, epoch)
    if mode == "stream":
        heap = [(0, lane) for lane in range(num_lanes)]
        lanes: list[list[int]] = [[] for _ in range(num_lanes)]
        starts: list[list[int]] = [[] for _ in range(num_lanes)]
        for i in order:
            total, lane = heapq.heappop(heap)
            lanes[lane].append(i)
            starts[lane].append(total)
            heapq.heappush(heap, (total + sizes[i], lane))
        longest = max(total for total, _ in heap)
        return EpochPlan(math.ceil(longest / seq_len), lanes=lanes, lane_starts=starts)
    sess, begin = [], []
    t = seq_len
    for i in order:
        n = sizes[i]
        if n >= t:
            m = n // t
            off = hash64("offset", seed, epoch, keys[i]) % (n - m * t + 1)
            sess += [i] * m
            begin += range(off, off + m * t, t)
        elif pad_short:
            sess.append(i)
            begin.append(0)
    rng = np.random.Generator(np.random.PCG64(hash64("windows", seed, epoch)))
    perm = rng.permutation(len(sess))
    return EpochPlan(
        math.ceil(len(sess) / num_lanes),
        win_session=np.asarray(sess, np.int64)[perm],
        win_start=np.asarray(begin, np.int64)[perm],
    )


def lane_of(rank: int, row: int, batch_size: int) -> int:
    """The stream lane that row `row` of rank `rank`'s batches plays."""
    return rank * batch_size + row


def window_of(batch: int, rank: int, row: int, batch_size: int, world_size: int) -> int:
    """The window that row `row` of rank `rank`'s batch `batch` holds (none when it is past
    the plan's last window: padding)."""
    return (batch * world_size + rank) * batch_size + row


def worker_of(batch: int, workers: int) -> int:
    """The DataLoader worker (of `workers`) that makes batch `batch`: the order of the batches
    is the same for any number of workers."""
    return batch % workers


def data_key(sessions: Sequence) -> str:
    """What a position in the order of `sessions` (each with .key and .num_frames) is valid for:
    a digest of their split keys and lengths, which stay the same when DATA moves."""
    listed = [(s.key, s.num_frames) for s in sessions]
    return hashlib.sha256(json.dumps(listed).encode()).hexdigest()[:16]


def check_position(state: dict, settings: dict, data: str) -> tuple[int, int]:
    """(epoch, batch) of a loader `state` made with `settings`; GhframesError when they differ.
    A setting the state predates is not checked (before split_by, states split by session)."""
    state = {"split_by": "session", **state}
    diff = [
        f"{k} {state[k]!r} (state) vs {v!r}"
        for k, v in settings.items()
        if k in state and state[k] != v and k != "data"
    ]
    if diff:
        raise GhframesError("loader state is of another configuration: " + ", ".join(diff))
    if state.get("data", settings["data"]) != settings["data"]:
        raise GhframesError(
            f"loader state is of other data: the sessions of {data} are not those it was saved "
            "on (their keys or lengths differ)"
        )
    position = [state.get(k) for k in ("epoch", "batch")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in position):
        raise GhframesError(f"loader state: epoch and batch must be integers >= 0, got {position}")
    return position[0], position[1]
