"""The loader's plan (training/plan.py) alone: held-out splits, the order of an epoch and how
ranks and workers share it, as pure functions of session keys and sizes, seed and epoch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ghframes.training.plan import (
    epoch_order,
    held_out,
    held_out_repos,
    lane_of,
    plan_epoch,
    session_repos,
    split_key,
    window_of,
    worker_of,
)


def sessions(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Split keys and sizes (frames) of `n` sessions of several repositories."""
    rng = np.random.default_rng(seed)
    keys = [f"github.com/o/r{k % 7}@{k * 13}" for k in range(n)]
    return keys, [int(x) for x in rng.integers(1, 900, n)]


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    keys, _ = sessions(50)
    indices = list(range(0, 50, 2))
    order = epoch_order(keys, indices, seed=3, epoch=0)
    assert sorted(order) == indices
    assert order == epoch_order(keys, indices, seed=3, epoch=0)
    assert order != epoch_order(keys, indices, seed=3, epoch=1)
    assert order != epoch_order(keys, indices, seed=4, epoch=0)
    # the order follows the keys: the same sessions listed at other indices keep their order
    moved = [keys[i] for i in reversed(range(50))]
    again = epoch_order(moved, [49 - i for i in indices], seed=3, epoch=0)
    assert [moved[i] for i in again] == [keys[i] for i in order]


def test_held_out_split_is_stable():
    keys = {f"s{k}": f"github.com/o/r{k}@0" for k in range(200)}
    held = held_out(keys, 0.1)
    assert held == held_out(dict(reversed(keys.items())), 0.1)  # not the listing order
    assert 5 <= len(held) <= 40  # about a tenth of 200
    # a session's side depends on its key alone: more sessions leave the others where they were
    more = dict(keys, **{f"t{k}": f"github.com/p/q{k}@0" for k in range(100)})
    assert held_out(more, 0.1) & set(keys) == held
    assert held_out(keys, 0.0) == set()
    assert len(held_out({"a": "x@0", "b": "y@0"}, 1e-9)) == 1  # at least one of two or more
    assert held_out({"a": "x@0"}, 1e-9) == set()
    assert (
        split_key("id", {"repo": "github.com/o/r", "first_commit_index": 4}) == "github.com/o/r@4"
    )
    assert split_key("id", {}) == "id"
    # Two repositories of one name (two folders called `repo`): their keys tell them apart.
    one, two = ({"repo": "repo", "key": f"repo-{h}", "first_commit_index": 0} for h in "ab")
    assert split_key("x", one) != split_key("y", two)
    assert set(session_repos({"x": one, "y": two}, "m", "DATA").values()) == {"repo-a", "repo-b"}


def test_held_out_repos_is_a_fraction_of_whole_repositories():
    repos = {f"s{k}": f"github.com/o/r{k % 40}" for k in range(400)}
    held = held_out_repos(repos, 0.25)
    held_repos = {repos[sid] for sid in held}
    assert held == {sid for sid, repo in repos.items() if repo in held_repos}
    assert 4 <= len(held_repos) <= 16  # about a quarter of 40
    two = {"a": "x/one", "b": "x/one", "c": "x/two"}
    assert len({two[sid] for sid in held_out_repos(two, 1e-9)}) == 1  # at least one
    assert held_out_repos(two, 0.0) == set()


@pytest.mark.parametrize(("batch_size", "world_size"), [(1, 1), (3, 1), (2, 3)])
def test_stream_ranks_take_disjoint_lanes_that_hold_every_frame(batch_size, world_size):
    keys, sizes = sessions(40)
    indices = list(range(1, 40))
    t = 100
    plan = plan_epoch("stream", keys, sizes, indices, 5, 0, batch_size * world_size, t)
    assert plan == plan_epoch("stream", keys, sizes, indices, 5, 0, batch_size * world_size, t)
    lanes = [lane_of(r, b, batch_size) for r in range(world_size) for b in range(batch_size)]
    assert sorted(lanes) == list(range(batch_size * world_size))  # each lane one rank's row
    played = [i for lane in plan.lanes for i in lane]
    assert sorted(played) == indices  # every session of the split, once
    ends = []
    for lane, starts in zip(plan.lanes, plan.lane_starts, strict=True):
        assert starts == [sum(sizes[i] for i in lane[:j]) for j in range(len(lane))]
        ends.append(sum(sizes[i] for i in lane))
    assert plan.num_batches == math.ceil(max(ends) / t)
    assert max(ends) - min(ends) <= max(sizes)  # dealt to the shortest lane first


@pytest.mark.parametrize("pad_short", [False, True])
def test_windows_are_dealt_once_each_to_ranks_and_rows(pad_short):
    keys, sizes = sessions(30)
    indices = list(range(30))
    t, batch_size, world_size = 128, 2, 3
    plan = plan_epoch("window", keys, sizes, indices, 1, 2, batch_size * world_size, t, pad_short)
    expected = sum(n // t if n >= t else int(pad_short) for n in sizes)
    assert len(plan.win_session) == expected
    assert plan.num_batches == math.ceil(expected / (batch_size * world_size))
    for i, start in zip(plan.win_session, plan.win_start, strict=True):
        assert start >= 0 and (start + t <= sizes[i] or (pad_short and start == 0))
    seen = [
        window_of(k, r, b, batch_size, world_size)
        for k in range(plan.num_batches)
        for r in range(world_size)
        for b in range(batch_size)
    ]
    assert sorted(seen) == list(range(plan.num_batches * batch_size * world_size))
    again = plan_epoch("window", keys, sizes, indices, 1, 2, batch_size * world_size, t, pad_short)
    assert np.array_equal(plan.win_session, again.win_session)
    assert np.array_equal(plan.win_start, again.win_start)
    other = plan_epoch("window", keys, sizes, indices, 1, 3, batch_size * world_size, t, pad_short)
    assert not np.array_equal(plan.win_start, other.win_start)


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_workers_make_each_batch_once(workers):
    made = [[k for k in range(23) if worker_of(k, workers) == w] for w in range(workers)]
    assert sorted(k for batches in made for k in batches) == list(range(23))
