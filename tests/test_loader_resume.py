"""The streaming dataloader's position (`state_dict`): resumed in another process it continues
exactly; a state of another configuration is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import batches, same
from ghframes.errors import GhframesError
from ghframes.training.loader import FrameStream


@pytest.fixture
def data(loader_data) -> str:
    """The DATA the loader tests share (conftest.loader_data)."""
    return loader_data


RESUME = """
import json, sys, torch
from ghframes.training.loader import FrameStream
data, mode, state, out = sys.argv[1:5]
ds = FrameStream(data, 2, 64, mode, seed=7)
if state != "-":
    ds.load_state_dict(json.load(open(state)))
got = []
for k, b in enumerate(ds):
    got.append(b)
    if state == "-" and k == 4:  # stop mid-epoch
        json.dump(ds.state_dict(), open(out + ".state", "w"))
        break
torch.save(got, out)
"""


@pytest.mark.parametrize("mode", ["stream", "window"])
def test_resume_in_another_process_continues_exactly(data, mode, tmp_path):
    script = tmp_path / "resume.py"
    script.write_text(RESUME)
    run = lambda *a: subprocess.run([sys.executable, str(script), data, mode, *a], check=True)  # noqa: E731
    run("-", str(tmp_path / "first.pt"))
    run(str(tmp_path / "first.pt.state"), str(tmp_path / "second.pt"))
    state = json.loads((tmp_path / "first.pt.state").read_text())
    assert (state["epoch"], state["batch"]) == (0, 5)
    resumed = torch.load(tmp_path / "first.pt") + torch.load(tmp_path / "second.pt")
    same(batches(FrameStream(data, 2, 64, mode, seed=7)), resumed)


def test_state_refuses_another_configuration(data):
    ds = FrameStream(data, 2, 64, "stream")
    with pytest.raises(GhframesError, match="batch_size 3 \\(state\\) vs 2"):
        ds.load_state_dict({**ds.state_dict(), "batch_size": 3})
    by_repo = FrameStream(data, 2, 64, "stream", split_by="repo")
    with pytest.raises(GhframesError, match="split_by 'session' \\(state\\) vs 'repo'"):
        by_repo.load_state_dict(ds.state_dict())
    old_state = {k: v for k, v in ds.state_dict().items() if k != "split_by"}  # before split_by
    ds.load_state_dict(old_state)
    with pytest.raises(GhframesError, match="split_by 'session' \\(state\\) vs 'repo'"):
        by_repo.load_state_dict(old_state)


def test_state_refuses_another_seed(data):
    """The seed orders the epoch: a position in one order is no position in another."""
    state = FrameStream(data, 2, 64, "stream", seed=0).state_dict()
    with pytest.raises(GhframesError, match="seed 0 \\(state\\) vs 1"):
        FrameStream(data, 2, 64, "stream", seed=1).load_state_dict(state)


def other_data(data: str, tmp_path, drop: bool) -> str:
    """A copy of `data` elsewhere; with `drop`, without one of its train sessions."""
    copy = tmp_path / ("fewer" if drop else "moved")
    shutil.copytree(data, copy)
    if drop:
        ds = FrameStream(data, 2, 64, "stream")
        manifest = copy / "frames" / "_manifest.json"
        doc = json.loads(manifest.read_text())
        del doc["sessions"][ds.session_ids[ds.split_indices[0]]]
        manifest.write_text(json.dumps(doc))
    return str(copy)


def test_state_refuses_other_data_and_follows_moved_data(data, tmp_path):
    ds = FrameStream(data, 2, 64, "window", seed=7)
    next(iter(ds))
    fewer = FrameStream(other_data(data, tmp_path, drop=True), 2, 64, "window", seed=7)
    with pytest.raises(GhframesError) as err:
        fewer.load_state_dict(ds.state_dict())
    assert str(err.value) == (
        f"loader state is of other data: the sessions of split 'train' of {fewer.source} are not "
        "those it was saved on (their keys or lengths differ)"
    )
    moved = FrameStream(other_data(data, tmp_path, drop=False), 2, 64, "window", seed=7)
    moved.load_state_dict(ds.state_dict())  # the same histories elsewhere: the same order
    same(batches(ds), batches(moved))


def test_state_refuses_a_damaged_position(data):
    ds = FrameStream(data, 2, 64, "stream")
    with pytest.raises(
        GhframesError, match=r"^loader state: epoch and batch must be integers >= 0, got \[0, -1\]$"
    ):
        ds.load_state_dict({**ds.state_dict(), "batch": -1})


def epoch(data: str, k: int, mode: str = "window") -> list[dict]:
    """Every batch of epoch k."""
    ds = FrameStream(data, 2, 128, mode, seed=3)
    ds.set_epoch(k)
    return batches(ds)


@pytest.mark.parametrize("mode", ["stream", "window"])
def test_iterating_again_continues_with_the_next_epoch(data, mode):
    ds = FrameStream(data, 2, 128, mode, seed=3)
    got = [batches(ds) for _ in range(3)]  # for epoch in range(3): for batch in ds: ...
    assert ds.epoch == 2
    for k in range(3):
        same(got[k], epoch(data, k, mode))
    if mode == "window":  # reshuffled
        assert not all(torch.equal(a["t"], b["t"]) for a, b in zip(got[0], got[1], strict=False))
    ds.set_epoch(0)  # set_epoch still picks the epoch
    part = []
    for b in ds:  # and an epoch left early continues where it was left
        part.append({k: v.clone() for k, v in b.items()})
        if len(part) == 3:
            break
    same(part + batches(ds), epoch(data, 0, mode))


def test_a_state_at_the_end_of_an_epoch_continues_with_the_next(data):
    ds = FrameStream(data, 2, 128, "window", seed=3)
    first = batches(ds)
    state = ds.state_dict()
    assert (state["epoch"], state["batch"]) == (0, len(first))
    resumed = FrameStream(data, 2, 128, "window", seed=3)
    resumed.load_state_dict(state)
    same(batches(resumed), epoch(data, 1))


def test_persistent_dataloader_workers_continue_with_the_next_epoch(data):
    ds = FrameStream(data, 2, 128, "window", seed=3)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=None, num_workers=2, persistent_workers=True
    )
    same(batches(loader), epoch(data, 0))
    same(batches(loader), epoch(data, 1))


def test_trainer_refuses_to_resume_on_other_data(data, tmp_path, capsys):
    """The checkpoint's loader position is checked against the DATA of the resumed run: other
    sessions are refused in one line, the same histories moved elsewhere continue."""
    from test_train import run_main

    out = tmp_path / "out"
    assert run_main(out, "--data", data) == 0
    metrics = (out / "metrics.jsonl").read_text()
    capsys.readouterr()
    fewer = other_data(data, tmp_path, drop=True)
    assert run_main(out, "--data", fewer, "--resume", "auto", "--steps", "2", "--reschedule") == 2
    assert capsys.readouterr().err == (
        f"train: error: {out / 'checkpoint.pt'}: loader state is of other data: the sessions of "
        f"split 'train' of {fewer} are not those it was saved on (their keys or lengths differ)\n"
    )
    assert (out / "metrics.jsonl").read_text() == metrics  # nothing written is lost
    moved = other_data(data, tmp_path, drop=False)
    assert run_main(out, "--data", moved, "--resume", "auto", "--steps", "2", "--reschedule") == 0
