"""The streaming dataloader's position (`state_dict`): resumed in another process it continues
exactly; a state of another configuration is refused."""

from __future__ import annotations

import json
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
