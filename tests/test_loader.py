"""The streaming dataloader (training/loader.py) on a dataset rendered by the real pipeline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from test_render import tiny_repo

import ghframes
from ghframes.errors import GhframesError
from ghframes.sample import write_edits
from ghframes.training.chars import ACTION_NAMES, CHAR_VOCAB, action_ids, char_id, char_ids
from ghframes.training.loader import FrameStream

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data(tmp_path_factory, ray_local):
    from ghframes.pipelines.render import render_dataset
    from ghframes.render import realistic_history
    from ghframes.session import RenderOptions

    root = tmp_path_factory.mktemp("loader") / "data"
    rows = [
        {k: r[k] for k in ("commit_index", "path", "status", "before", "after")}
        for c in realistic_history(3, 2)
        for r in c
    ]
    write_edits(
        root,
        {"github.com/bench/history": rows, "local/tiny": tiny_repo(3), "local/t2": tiny_repo(5)},
    )
    render_dataset(str(root), RenderOptions(max_frames_per_session=700))
    return str(root)


def batches(ds) -> list[dict]:
    return [{k: v.clone() for k, v in b.items()} for b in ds]


def same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for k in x:
            assert torch.equal(x[k], y[k]), k


def test_ids_are_defined_once():
    assert CHAR_VOCAB == 256 and [char_id(c) for c in (0, 32, 65, 127)] == [0, 32, 65, 127]
    cps = np.array([233, 0x4E16, 0x1F600, 0x10FFFF], np.uint32)
    ids = char_ids(cps)
    assert (ids >= 128).all() and list(ids) == [char_id(int(c)) for c in cps]
    ids, bad = action_ids(pa.array(["a", "<Enter>", "é", "<U+200B>", "<C-b>", " "]))
    assert bad == -1 and [ACTION_NAMES[i] for i in ids] == [
        "a",
        "<Enter>",
        "<other>",
        "<U+XXXX>",
        "<C-b>",
        " ",
    ]
    assert action_ids(pa.array(["a", "<Bogus>"]))[1] == 1
    assert len(set(ACTION_NAMES)) == len(ACTION_NAMES)


@pytest.mark.parametrize(("mode", "T"), [("stream", 100), ("stream", 160), ("window", 100)])
def test_batches_hold_the_sessions(data, mode, T):  # T < 128: streamed parts; else cached chunks
    ds = FrameStream(data, 3, T, mode, seed=1)
    assert ds.schema_version.startswith("1.") and ds.char_vocab == 256
    assert ds.max_seq_len == (
        None if mode == "stream" else max(ds.sessions[i].num_frames for i in ds.split_sessions)
    )
    frames = ghframes.open_dataset(data)
    cache = {}
    seen = 0
    lane_next = {}
    for b in ds:
        assert b["frames"].shape == (3, T, 48, 160) and b["frames"].dtype == torch.uint8
        m = b["mask"].numpy()
        assert not b["frames"][~b["mask"]].any()
        for r in range(3):
            for c in np.flatnonzero(m[r]):
                sid = ds.session_ids[int(b["session"][r, c])]
                s = cache.get(sid) or cache.setdefault(sid, frames.session(sid))
                t = int(b["t"][r, c])
                assert np.array_equal(b["frames"][r, c].numpy(), char_ids(s.frames[t]))
                assert b["cursor"][r, c].tolist() == s.cursor[t].tolist()
                name = ds.action_names[int(b["actions"][r, c])]
                assert name == s.actions[t] or (name == "<other>" and len(s.actions[t]) == 1)
                assert bool(b["reset"][r, c]) == (t == 0 or (mode == "window" and c == 0))
                if mode == "stream" and r in lane_next and c == 0:  # lanes are continuous
                    assert lane_next[r] in ((sid, t), "new") and (lane_next[r] == "new") == (t == 0)
                seen += 1
            if mode == "stream":
                last = np.flatnonzero(m[r])
                if len(last) and last[-1] == T - 1:
                    sid = ds.session_ids[int(b["session"][r, T - 1])]
                    t = int(b["t"][r, T - 1]) + 1
                    lane_next[r] = (
                        (sid, t) if t < ds.sessions[ds.session_ids.index(sid)].num_frames else "new"
                    )
                else:
                    lane_next.pop(r, None)
    train_frames = sum(ds.sessions[i].num_frames for i in ds.split_sessions)
    if mode == "stream":
        assert seen == train_frames
    else:
        assert 0 < seen <= train_frames


def test_eval_split_is_held_out(data):
    train = FrameStream(data, 2, 64, "stream", seed=0)
    held = FrameStream(data, 2, 64, "stream", seed=0, split="eval")
    assert set(train.split_sessions).isdisjoint(held.split_sessions)
    assert sorted(train.split_sessions + held.split_sessions) == list(range(len(train.sessions)))
    assert {int(s) for b in held for s in b["session"][b["mask"]]} == set(held.split_sessions)


def test_order_is_a_function_of_seed_and_epoch_and_independent_of_workers(data):
    a = batches(FrameStream(data, 2, 128, "window", seed=3))
    same(a, batches(FrameStream(data, 2, 128, "window", seed=3)))
    other = FrameStream(data, 2, 128, "window", seed=3)
    other.set_epoch(1)
    assert not all(torch.equal(x["t"], y["t"]) for x, y in zip(a, batches(other), strict=False))
    for mode in ("stream", "window"):
        one = batches(FrameStream(data, 2, 128, mode, seed=3))
        loader = torch.utils.data.DataLoader(
            FrameStream(data, 2, 128, mode, seed=3), batch_size=None, num_workers=2
        )
        same(one, batches(loader))


@pytest.mark.parametrize("mode", ["stream", "window"])
def test_ranks_and_workers_partition_the_epoch(data, mode):
    seen = []
    for rank in range(2):
        ds = FrameStream(data, 2, 96, mode, seed=5, rank=rank, world_size=2)
        for w in range(2):  # as DataLoader worker w of 2 would
            info = type("Info", (), {"id": w, "num_workers": 2})
            torch.utils.data.get_worker_info, saved = (
                (lambda info=info: info),
                torch.utils.data.get_worker_info,
            )
            try:
                ds.set_epoch(0)
                for b in ds:
                    m = b["mask"]
                    seen += list(zip(b["session"][m].tolist(), b["t"][m].tolist(), strict=True))
            finally:
                torch.utils.data.get_worker_info = saved
    assert len(seen) == len(set(seen))  # nothing twice
    ref = FrameStream(data, 4, 96, mode, seed=5)
    if mode == "stream":  # every frame of the split
        expected = {(i, t) for i in ref.split_sessions for t in range(ref.sessions[i].num_frames)}
        assert set(seen) == expected
    else:  # every window of the epoch (the plan does not depend on rank)
        plan = ref._plan()
        expected = {
            (int(i), int(s) + d)
            for i, s in zip(plan.win_session, plan.win_start, strict=True)
            for d in range(96)
        }
        assert set(seen) == expected


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


def test_damaged_shards_name_shard_and_chunk(data, tmp_path):
    copy = tmp_path / "d"
    shutil.copytree(data, copy)
    manifest = json.loads((copy / "frames" / "manifest.json").read_text())
    probe = FrameStream(str(copy), 1, 64, "stream")
    train = [probe.sessions[i] for i in probe.split_sessions]
    victim = next(s for s in train if s.num_frames > 300)
    path = copy / "frames" / victim.shard
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # truncated
    with pytest.raises(GhframesError, match=rf"^{path}: chunk \d+: damaged shard"):
        list(FrameStream(str(copy), 1, 64, "stream"))
    ds = FrameStream(str(copy), 1, 64, "stream", skip_bad_shards=True)
    got = batches(ds)
    assert list(ds.skipped) == [str(path)]
    ids = {int(s) for b in got for s in b["session"][b["mask"]]}
    assert ids == set(probe.split_sessions) - {probe.session_ids.index(victim.id)}
    path.unlink()  # missing
    with pytest.raises(GhframesError, match=rf"^{path}: chunk 0: shard is missing"):
        list(FrameStream(str(copy), 1, 64, "stream"))
    # a corrupt frames blob in a chunk past the first: the error names that chunk
    import pyarrow.parquet as pq

    from ghframes import shards
    from ghframes.frames import frames_schema

    path.write_bytes(raw)
    table = pq.read_table(path)
    blobs = table.column("frames").to_pylist()
    blobs[1] = blobs[1][:10] + b"\xff" * 8 + blobs[1][18:]
    table = table.set_column(
        table.schema.get_field_index("frames"), "frames", pa.array(blobs, pa.binary())
    )
    fs, _ = shards.filesystem(str(copy))
    shards.write_table(
        fs,
        str(path),
        table.replace_schema_metadata(None),
        frames_schema(),
        extra_metadata={
            k.decode(): v.decode()
            for k, v in pq.read_schema(path).metadata.items()
            if k.decode().startswith("ghframes.session")
        },
    )
    with pytest.raises(GhframesError, match=rf"^{path}: chunk 1: frames do not decompress"):
        list(FrameStream(str(copy), 1, 64, "stream"))
    assert manifest["sessions"][victim.id]["shard"] == victim.shard


def test_state_refuses_another_configuration(data):
    ds = FrameStream(data, 2, 64, "stream")
    with pytest.raises(GhframesError, match="batch_size 3 \\(state\\) vs 2"):
        ds.load_state_dict({**ds.state_dict(), "batch_size": 3})


def test_trainer_runs_on_real_data(data, tmp_path):
    from test_train import small_run

    from ghframes.training.model import PRESETS
    from ghframes.training.train import train

    result = train(small_run(tmp_path, data=data), PRESETS["tiny"], env={}, log=lambda _: None)
    assert result.step == 2
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records] == ["train", "train", "eval"]


def test_streams_from_s3_on_loopback(data, monkeypatch):
    """A real S3 server (moto's) on 127.0.0.1: the same batches as from the local copy."""
    pytest.importorskip("moto.server")
    import socket

    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    try:
        query = (
            f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
            "&allow_bucket_creation=true"
        )
        s3, _ = pafs.FileSystem.from_uri(f"s3://frames?{query}")
        s3.create_dir("frames")
        pafs.copy_files(f"{data}/frames", "frames/data/frames", destination_filesystem=s3)
        remote = FrameStream(f"s3://frames/data?{query}", 2, 100, "stream", seed=2)
        assert remote.remote
        same(batches(FrameStream(data, 2, 100, "stream", seed=2)), batches(remote))
        gone = remote.sessions[remote.split_sessions[0]].shard
        s3.delete_file(f"frames/data/frames/{gone}")
        with pytest.raises(
            GhframesError, match=rf"frames/data/frames/{gone}: chunk 0: shard is missing"
        ):
            batches(FrameStream(f"s3://frames/data?{query}", 2, 100, "stream", seed=2))
    finally:
        server.stop()
