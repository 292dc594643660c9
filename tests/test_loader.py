"""The streaming dataloader (training/loader.py) on a dataset rendered by the real pipeline.

Resuming and its state: test_loader_resume.py; streaming from S3: test_loader_s3.py; the plan of
an epoch alone: test_plan.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

import ghframes
from conftest import batches, same
from ghframes.errors import GhframesError
from ghframes.training.chars import ACTION_NAMES, CHAR_VOCAB, action_ids, char_id, char_ids
from ghframes.training.loader import FrameStream
from ghframes.training.plan import held_out


@pytest.fixture
def data(loader_data) -> str:
    """The DATA the loader tests share (conftest.loader_data)."""
    return loader_data


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


@pytest.mark.parametrize(
    ("mode", "T"), [("stream", 100), ("stream", 160), ("window", 100), ("window", 160)]
)
def test_batches_hold_the_sessions(data, mode, T):  # T < segment, T > segment
    ds = FrameStream(data, 3, T, mode, seed=1)
    assert ds.schema_version.startswith("2.") and ds.char_vocab == 256
    assert ds.max_seq_len == (
        None if mode == "stream" else max(ds.sessions[i].num_frames for i in ds.split_indices)
    )
    frames = ghframes.open_dataset(data)
    cache = {}
    seen = 0
    lane_next = {}
    for b in ds:
        assert b["frames"].shape == (3, T, 48, 160) and b["frames"].dtype == torch.uint8
        m = b["mask"].numpy()
        assert not b["frames"][~b["mask"]].any()
        assert b["dt"].shape == (3, T) and b["dt"].dtype == torch.int32
        assert not b["dt"][~b["mask"]].any()
        for r in range(3):
            for c in np.flatnonzero(m[r]):
                sid = ds.session_ids[int(b["session"][r, c])]
                s = cache.get(sid) or cache.setdefault(sid, frames.session(sid))
                t = int(b["t"][r, c])
                assert np.array_equal(b["frames"][r, c].numpy(), char_ids(s.frames[t]))
                assert b["cursor"][r, c].tolist() == s.cursor[t].tolist()
                assert int(b["dt"][r, c]) == int(s.dt[t])
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
    train_frames = sum(ds.sessions[i].num_frames for i in ds.split_indices)
    if mode == "stream":
        assert seen == train_frames
    else:
        assert 0 < seen <= train_frames


def test_eval_split_is_held_out(data):
    train = FrameStream(data, 2, 64, "stream", seed=0)
    held = FrameStream(data, 2, 64, "stream", seed=0, split="eval")
    assert set(train.split_indices).isdisjoint(held.split_indices)
    assert sorted(train.split_indices + held.split_indices) == list(range(len(train.sessions)))
    assert {int(s) for b in held for s in b["session"][b["mask"]]} == set(held.split_indices)


def test_split_and_order_follow_the_history_not_where_it_was_crawled(
    tmp_path, make_repo, ray_local
):
    """Session ids and a local repository's name carry its location (two local repositories
    may share a folder name), but a session's frames, split and place in the order depend only
    on its history and first commit: the same history crawled from another folder renders the
    same frames, holds out the same sessions and gives the same batches."""
    from ghframes import cli

    repo = make_repo("a/proj")
    for k in range(12):
        repo.commit(f"step {k}", {f"f{k % 3}.py": f"x = {k}\n" * (k + 1)})
    shutil.copytree(repo.path, tmp_path / "b" / "proj")

    def held(source: Path) -> tuple[set[str], set[tuple], list[dict]]:
        data = tmp_path / f"data-{source.parent.name}"
        assert cli.main(["crawl", str(source), "--out", str(data), "--no-progress"]) == 0
        render = ["render", str(data), "--max-frames-per-session", "150", "--no-progress"]
        assert cli.main(render) == 0
        manifest = json.loads((data / "frames" / "_manifest.json").read_text())["sessions"]
        ds = FrameStream(str(data), 2, 64, "stream", split="eval", eval_fraction=0.5)
        assert len(ds.sessions) >= 6
        ids = {ds.sessions[i].id for i in ds.split_indices}
        where = {(manifest[i]["root"], manifest[i]["first_commit_index"]) for i in ids}
        return ids, where, batches(FrameStream(str(data), 2, 64, "window", seed=1))

    (ids_a, where_a, train_a), (ids_b, where_b, train_b) = (
        held(repo.path),
        held(tmp_path / "b" / "proj"),
    )
    assert ids_a.isdisjoint(ids_b)  # the ids differ with the location
    assert where_a == where_b and len(where_a) >= 2
    same(train_a, train_b)


def repos_of(data: str) -> dict[str, str]:
    """{session id: repository} from the frames manifest."""
    manifest = json.loads((Path(data) / "frames" / "_manifest.json").read_text())
    return {sid: s["repo"] for sid, s in manifest["sessions"].items()}


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_split_by_repo_holds_out_whole_repositories(data, fraction):
    repo_of = repos_of(data)
    assert len(set(repo_of.values())) == 3

    def split(name: str) -> FrameStream:
        return FrameStream(
            data, 2, 64, "stream", split=name, eval_fraction=fraction, split_by="repo"
        )

    train, held = split("train"), split("eval")
    assert set(train.split_indices).isdisjoint(held.split_indices)
    assert sorted(train.split_indices + held.split_indices) == list(range(len(train.sessions)))
    repos = [{repo_of[ds.sessions[i].id] for i in ds.split_indices} for ds in (train, held)]
    assert repos[0] and repos[1] and repos[0].isdisjoint(repos[1])
    assert {int(s) for b in held for s in b["session"][b["mask"]]} == set(held.split_indices)
    # by session, the same data puts sessions of one repository on both sides
    by_session = FrameStream(data, 2, 64, "stream", split="eval", eval_fraction=fraction)
    mixed = {repo_of[by_session.sessions[i].id] for i in by_session.split_indices}
    assert not mixed.isdisjoint(repos[0])


def test_split_by_session_is_the_default(data):
    for split in ("train", "eval"):
        default = FrameStream(data, 2, 64, "window", seed=2, split=split)
        explicit = FrameStream(data, 2, 64, "window", seed=2, split=split, split_by="session")
        assert default.split_by == "session"
        assert default.split_indices == explicit.split_indices
        same(batches(default), batches(explicit))
    held = held_out({s.id: s.key for s in default.sessions}, 0.1)
    assert {default.sessions[i].id for i in default.split_indices} == held


def test_split_by_repo_refuses_one_repository(data, tmp_path):
    manifest = json.loads((Path(data) / "frames" / "_manifest.json").read_text())
    one = {sid: s for sid, s in manifest["sessions"].items() if s["repo"] == "local/t2"}
    path = tmp_path / "one" / "frames" / "_manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**manifest, "sessions": one}))
    with pytest.raises(GhframesError) as err:
        FrameStream(str(tmp_path / "one"), 2, 64, split_by="repo")
    assert str(err.value) == (
        f"{tmp_path / 'one'}: split_by='repo' needs at least two repositories; every session is "
        "of 'local/t2' (use split_by='session')"
    )
    sid = next(iter(one))
    for field in ("repo", "key", "root"):  # what names a session's repository (plan.repository_of)
        manifest["sessions"][sid].pop(field, None)
    path = tmp_path / "norepo" / "frames" / "_manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(manifest))
    with pytest.raises(GhframesError) as err:
        FrameStream(str(tmp_path / "norepo"), 2, 64, split_by="repo")
    assert str(err.value) == (
        f"{path}: session {sid} names no repo; split_by='repo' needs the repository of every "
        "session (render again, or use split_by='session')"
    )
    with pytest.raises(GhframesError) as err:
        FrameStream(data, 2, 64, split_by="file")
    assert str(err.value) == "loader: unknown split_by 'file'; valid: session, repo"


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


def test_worker_batches_in_shared_memory_stay_intact_while_held(data):
    """DataLoader workers fill batches in shared slots reused once released: a consumer that
    keeps every batch (more than the slots) still sees each exactly as a single process
    makes it, and batches dropped as they are used give the same as well."""
    from ghframes.training.slots import SHARED_SLOTS

    one = batches(FrameStream(data, 2, 64, "stream", seed=3))
    assert len(one) > 2 * SHARED_SLOTS + 2
    ds = FrameStream(data, 2, 64, "stream", seed=3)
    held = list(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2))
    same(one, held)
    del held
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
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
        expected = {(i, t) for i in ref.split_indices for t in range(ref.sessions[i].num_frames)}
        assert set(seen) == expected
    else:  # every window of the epoch (the plan does not depend on rank)
        plan = ref._plan()
        expected = {
            (int(i), int(s) + d)
            for i, s in zip(plan.win_session, plan.win_start, strict=True)
            for d in range(96)
        }
        assert set(seen) == expected


def test_damaged_shards_name_shard_and_chunk(data, tmp_path):
    copy = tmp_path / "d"
    shutil.copytree(data, copy)
    manifest = json.loads((copy / "frames" / "_manifest.json").read_text())
    probe = FrameStream(str(copy), 1, 64, "stream")
    train = [probe.sessions[i] for i in probe.split_indices]
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
    assert ids == set(probe.split_indices) - {probe.session_ids.index(victim.id)}
    path.unlink()  # missing
    with pytest.raises(GhframesError, match=rf"^{path}: chunk 0: shard is missing"):
        list(FrameStream(str(copy), 1, 64, "stream"))
    # a corrupt frames blob in a chunk past the first: the error names that chunk
    import pyarrow.parquet as pq

    from ghframes.store import shards
    from ghframes.store.frames import SESSION_KEY, frames_schema

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
        footer_metadata={SESSION_KEY: shards.footer_value(pq.ParquetFile(path), SESSION_KEY)},
    )
    with pytest.raises(GhframesError, match=rf"^{path}: chunk 1: frames do not decompress"):
        list(FrameStream(str(copy), 1, 64, "stream"))
    assert manifest["sessions"][victim.id]["shard"] == victim.shard


@pytest.mark.parametrize("split_by", ["session", "repo"])
def test_trainer_runs_on_real_data(data, tmp_path, split_by):
    from test_train import small_run

    from ghframes.training.model import PRESETS
    from ghframes.training.train import make_loader, read_checkpoint, train

    cfg = small_run(tmp_path, data=data, split_by=split_by)
    result = train(cfg, PRESETS["tiny"], env={}, log=lambda _: None)
    assert result.step == 2
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records] == ["train", "train", "eval"]
    assert read_checkpoint(tmp_path / "checkpoint.pt")["loader_state"][0]["loader"]["split_by"] == (
        split_by
    )
    train_ds, held = (make_loader(cfg, split, 0, 1) for split in ("train", "eval"))
    assert train_ds.split_by == held.split_by == split_by
    assert train_ds.channels == ("chars", "fg", "bg", "attrs")
    mono = make_loader(cfg, "train", 0, 1, colour=False)  # a model without colour: no planes
    assert mono.channels == ("chars",) and "fg" not in next(iter(mono))
    ref = FrameStream(data, 2, 16, split="eval", split_by=split_by)
    assert held.split_indices == ref.split_indices
    assert set(train_ds.split_indices).isdisjoint(held.split_indices)


@pytest.mark.parametrize("version", ["1.0", "1.3"])
def test_shards_of_frames_1_read_the_same(data, tmp_path, version):
    """Shards of frames 1.x give the same characters, cursor and times (1.3) as the 2.0 shards
    they were made from, by every reading path: whole frames, not row-coded; 1.0 wrote one zstd
    frame per chunk, before segments. A 1.x dataset's batches hold characters only."""
    import pyarrow.parquet as pq
    import zstandard
    from test_reader import write_old_version

    from ghframes.store.codec import segments_of

    old = tmp_path / "old"
    shutil.copytree(data, old)
    one_frame = zstandard.ZstdCompressor(level=6, write_content_size=True)
    for path in (old / "frames").rglob("[!_]*.parquet"):
        write_old_version(str(path), version, frames_dir=old / "frames")
        if version != "1.0":
            continue
        f = pq.ParquetFile(path)
        table = f.read()
        blobs = []
        for blob in table.column("frames").to_pylist():
            raw = zstandard.ZstdDecompressor().stream_reader(blob, read_across_frames=True).read()
            blobs.append(one_frame.compress(raw))
            assert len(segments_of(blob)) == -(-len(raw) // (48 * 160 * 128)) or len(raw) == 0
        table = table.set_column(
            table.schema.get_field_index("frames"), "frames", pa.array(blobs, pa.binary())
        )
        pq.write_table(table, path, row_group_size=f.metadata.row_group(0).num_rows)
        assert all(len(segments_of(b)) == 1 for b in blobs)
    for mode, t in (("stream", 64), ("stream", 160), ("window", 160)):
        new = batches(FrameStream(data, 2, t, mode, seed=6, channels=("chars",)))
        got = batches(FrameStream(str(old), 2, t, mode, seed=6))
        if version == "1.0":  # no times then
            assert not any(b["dt"].any() for b in got)
            for b in new:
                b["dt"].zero_()
        same(new, got)
    sid = ghframes.open_dataset(data).sessions()[0].id
    now, then = (
        ghframes.open_dataset(data).session(sid),
        ghframes.open_dataset(str(old)).session(sid),
    )
    assert np.array_equal(now.frames, then.frames) and np.array_equal(now.cursor, then.cursor)
    assert now.fg.any() and not (then.fg.any() or then.bg.any() or then.attrs.any())


def test_without_libzstd_the_batches_are_the_same(data, monkeypatch):
    """The python-zstandard fallback (no loadable libzstd) decodes segments identically."""
    from ghframes.store import codec

    for mode, t in (("stream", 160), ("window", 64)):
        fast = batches(FrameStream(data, 2, t, mode, seed=8))
        with monkeypatch.context() as m:
            m.setattr(codec.ZSTD, "lib", None)
            same(fast, batches(FrameStream(data, 2, t, mode, seed=8)))
