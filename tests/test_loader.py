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
from ghframes.realistic import realistic_edit_rows
from ghframes.sample import write_edits
from ghframes.training.chars import ACTION_NAMES, CHAR_VOCAB, action_ids, char_id, char_ids
from ghframes.training.loader import FrameStream

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data(tmp_path_factory, ray_local):
    from ghframes.pipelines.render import render_dataset
    from ghframes.render.session import RenderOptions

    root = tmp_path_factory.mktemp("loader") / "data"
    write_edits(
        root,
        {
            "github.com/bench/history": realistic_edit_rows(3, 2),
            "local/tiny": tiny_repo(3),
            "local/t2": tiny_repo(5),
        },
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


@pytest.mark.parametrize(
    ("mode", "T"), [("stream", 100), ("stream", 160), ("window", 100), ("window", 160)]
)
def test_batches_hold_the_sessions(data, mode, T):  # T < segment, T > segment
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


def test_split_and_order_follow_the_history_not_where_it_was_crawled(
    tmp_path, make_repo, ray_local
):
    """Session ids carry the repository's location (two local repositories may share a folder
    name), but a session's split and place in the order depend only on its repository name
    and first commit: the same history crawled from another folder holds out the same
    sessions and gives the same batches."""
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
        manifest = json.loads((data / "frames" / "manifest.json").read_text())["sessions"]
        ds = FrameStream(str(data), 2, 64, "stream", split="eval", eval_fraction=0.5)
        assert len(ds.sessions) >= 6
        ids = {ds.sessions[i].id for i in ds.split_sessions}
        where = {(manifest[i]["repo"], manifest[i]["first_commit_index"]) for i in ids}
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
    manifest = json.loads((Path(data) / "frames" / "manifest.json").read_text())
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
    assert set(train.split_sessions).isdisjoint(held.split_sessions)
    assert sorted(train.split_sessions + held.split_sessions) == list(range(len(train.sessions)))
    repos = [{repo_of[ds.sessions[i].id] for i in ds.split_sessions} for ds in (train, held)]
    assert repos[0] and repos[1] and repos[0].isdisjoint(repos[1])
    assert {int(s) for b in held for s in b["session"][b["mask"]]} == set(held.split_sessions)
    # by session, the same data puts sessions of one repository on both sides
    by_session = FrameStream(data, 2, 64, "stream", split="eval", eval_fraction=fraction)
    mixed = {repo_of[by_session.sessions[i].id] for i in by_session.split_sessions}
    assert not mixed.isdisjoint(repos[0])


def test_held_out_repos_is_a_fraction_of_whole_repositories():
    repos = {f"s{k}": f"github.com/o/r{k % 40}" for k in range(400)}
    held = FrameStream.held_out_repos(repos, 0.25)
    held_repos = {repos[sid] for sid in held}
    assert held == {sid for sid, repo in repos.items() if repo in held_repos}
    assert 4 <= len(held_repos) <= 16  # about a quarter of 40
    two = {"a": "x/one", "b": "x/one", "c": "x/two"}
    assert len({two[sid] for sid in FrameStream.held_out_repos(two, 1e-9)}) == 1  # at least one
    assert FrameStream.held_out_repos(two, 0.0) == set()


def test_split_by_session_is_the_default(data):
    for split in ("train", "eval"):
        default = FrameStream(data, 2, 64, "window", seed=2, split=split)
        explicit = FrameStream(data, 2, 64, "window", seed=2, split=split, split_by="session")
        assert default.split_by == "session"
        assert default.split_sessions == explicit.split_sessions
        same(batches(default), batches(explicit))
    held = FrameStream.held_out({s.id: s.key for s in default.sessions}, 0.1)
    assert {default.sessions[i].id for i in default.split_sessions} == held


def test_split_by_repo_refuses_one_repository(data, tmp_path):
    manifest = json.loads((Path(data) / "frames" / "manifest.json").read_text())
    one = {sid: s for sid, s in manifest["sessions"].items() if s["repo"] == "local/t2"}
    path = tmp_path / "one" / "frames" / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**manifest, "sessions": one}))
    with pytest.raises(GhframesError) as err:
        FrameStream(str(tmp_path / "one"), 2, 64, split_by="repo")
    assert str(err.value) == (
        f"{tmp_path / 'one'}: split_by='repo' needs at least two repositories; every session is "
        "of 'local/t2' (use split_by='session')"
    )
    sid = next(iter(one))
    del manifest["sessions"][sid]["repo"]
    path = tmp_path / "norepo" / "frames" / "manifest.json"
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
    from ghframes.training.loader import SHARED_SLOTS

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
    ref = FrameStream(data, 2, 16, split="eval", split_by=split_by)
    assert held.split_sessions == ref.split_sessions
    assert set(train_ds.split_sessions).isdisjoint(held.split_sessions)


@pytest.fixture(scope="module")
def moto_port():
    """A real S3 server (moto's) on 127.0.0.1 for this module's tests; yields its port."""
    pytest.importorskip("moto.server")
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield port
    finally:
        server.stop()


def s3_filesystem(port: int, retry: bool = True):
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        endpoint_override=f"127.0.0.1:{port}",
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
        # retry=False: the S3 client tries once, so every fault reaches the loader's retries
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3 if retry else 1),
    )


def upload(port: int, data: str, bucket: str) -> None:
    import pyarrow.fs as pafs

    s3 = s3_filesystem(port)
    s3.create_dir(bucket)
    pafs.copy_files(f"{data}/frames", f"{bucket}/data/frames", destination_filesystem=s3)


class S3Proxy:
    """A loopback HTTP proxy in front of the S3 server: logs every request it forwards (method,
    path, Range, body bytes) and answers the ones `fault(method, path, nth)` names with that
    fault instead: 503 (S3's SlowDown) or "cut" (the connection closed halfway through the
    reply's body; one closed before any reply is retried by the S3 client itself). `nth` counts
    the requests of (method, path) from 0."""

    def __init__(self, upstream: int, fault=None) -> None:
        import http.client
        import http.server
        import threading

        proxy = self
        self.log: list[tuple[str, str, str | None, int]] = []
        self.faults: list[tuple[str, str, str]] = []
        self.fault = fault or (lambda method, path, nth: None)
        counts: dict[tuple[str, str], int] = {}
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                with lock:
                    nth = counts.get((self.command, path), 0)
                    counts[(self.command, path)] = nth + 1
                    fault = proxy.fault(self.command, path, nth)
                    if fault:
                        proxy.faults.append((self.command, path, fault))
                if fault == 503:
                    reply = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                skip = {"connection", "keep-alive", "proxy-connection", "expect"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    payload = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() in ("connection", "transfer-encoding", "keep-alive"):
                            continue
                        if k.lower() == "content-length" and self.command != "HEAD":
                            continue
                        self.send_header(k, v)
                    if self.command != "HEAD":
                        self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command == "HEAD":
                        payload = b""
                    elif fault == "cut":
                        payload = payload[: len(payload) // 2]
                        self.close_connection = True
                    self.wfile.write(payload)
                    self.wfile.flush()
                finally:
                    conn.close()
                with lock:
                    proxy.log.append((self.command, path, self.headers.get("Range"), len(payload)))

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.fixture(scope="module")
def long_data(tmp_path_factory, ray_local):
    """One long session (about 19 k frames, 74 chunks, 10 row groups)."""
    from ghframes.pipelines.render import render_dataset
    from ghframes.render.session import RenderOptions

    root = tmp_path_factory.mktemp("loader-long") / "data"
    write_edits(root, {"github.com/bench/long": realistic_edit_rows(6, 2)})
    render_dataset(str(root), RenderOptions(max_frames_per_session=1_000_000))
    return str(root)


def test_streams_from_s3_on_loopback(data, moto_port, monkeypatch):
    """A real S3 server (moto's) on 127.0.0.1: the same batches as from the local copy."""
    import pyarrow.fs as pafs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    query = (
        f"endpoint_override=127.0.0.1:{moto_port}&scheme=http&region=us-east-1"
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


def test_s3_reads_only_the_row_groups_a_window_needs(long_data, moto_port):
    """One window of a long session from S3: besides the footer, only the byte ranges of the
    row groups holding its frames are requested, a small part of the shard."""
    import pyarrow.parquet as pq

    from ghframes.store.frames import CHUNKS_PER_ROW_GROUP

    upload(moto_port, long_data, "ranges")
    ds = FrameStream(long_data, 1, 256, "window", seed=4, eval_fraction=0.0)
    (entry,) = ds.sessions
    local = next(iter(ds))
    lo = int(local["t"][0, 0])
    meta = pq.ParquetFile(f"{long_data}/frames/{entry.shard}").metadata
    size = Path(f"{long_data}/frames/{entry.shard}").stat().st_size
    assert meta.num_row_groups == -(-entry.num_frames // (256 * CHUNKS_PER_ROW_GROUP)) >= 10

    def extent(r: int) -> tuple[int, int]:  # bytes [start, end) of row group r
        cols = [meta.row_group(r).column(c) for c in range(meta.num_columns)]
        start = min(c.dictionary_page_offset or c.data_page_offset for c in cols)
        return start, start + sum(c.total_compressed_size for c in cols)

    per_group = 256 * CHUNKS_PER_ROW_GROUP  # frames
    needed = {lo // per_group, (lo + 255) // per_group}
    with S3Proxy(moto_port) as proxy:
        remote = FrameStream(
            "ranges/data", 1, 256, "window", seed=4, eval_fraction=0.0,
            filesystem=s3_filesystem(proxy.port),
        )  # fmt: skip
        same([local], [next(iter(remote))])
    gets = [(r, n) for m, path, r, n in proxy.log if m == "GET" and path.endswith(entry.shard)]
    footer = [n for r, n in gets if r.endswith(f"-{size - 1}")]  # the file's tail
    body = [(r, n) for r, n in gets if not r.endswith(f"-{size - 1}")]
    assert len(footer) == 1 and body, gets
    for r, _ in body:  # each read lies within a needed row group's bytes
        first, last = (int(x) for x in r.removeprefix("bytes=").split("-"))
        assert any(extent(g)[0] <= first and last < extent(g)[1] for g in needed), gets
    assert sum(n for _, n in body) <= sum(extent(g)[1] - extent(g)[0] for g in needed)
    assert footer[0] + sum(n for _, n in body) < size / 2, gets


def test_s3_transient_faults_are_retried_and_persistent_ones_name_shard_and_chunk(
    data, moto_port, monkeypatch
):
    """Faults injected between the loader and a real S3 server: a few per shard (503 SlowDown,
    a reply cut off halfway) give exactly the batches of a clean run; a shard whose
    reads keep failing gives an error naming it and the chunk, after RETRIES + 1 attempts."""
    from ghframes.training import loader

    monkeypatch.setattr(loader, "RETRY_DELAY", 0.01)
    upload(moto_port, data, "retries")
    clean = batches(FrameStream(data, 2, 100, "stream", seed=2))

    def transient(method, path, nth):
        if not path.endswith(".parquet"):
            return None
        # opening: HEAD fails, then the footer read; reading: the first row group read
        return {("HEAD", 0): 503, ("GET", 0): "cut", ("GET", 2): 503}.get((method, nth))

    with S3Proxy(moto_port, transient) as proxy:
        remote = FrameStream(
            "retries/data", 2, 100, "stream", seed=2, filesystem=s3_filesystem(proxy.port, False)
        )
        same(clean, batches(remote))
    shards = {remote.sessions[i].shard for i in remote.split_sessions}
    assert len(proxy.faults) == 3 * len(shards)
    assert {kind for _, _, kind in proxy.faults} == {503, "cut"}

    victim = remote.sessions[remote.split_sessions[0]].shard

    def persistent(method, path, nth):  # every read of the victim's row groups
        return 503 if method == "GET" and path.endswith(victim) and nth >= 1 else None

    with S3Proxy(moto_port, persistent) as proxy:
        fs = s3_filesystem(proxy.port, False)
        with pytest.raises(
            GhframesError,
            match=rf"^retries/data/frames/{victim}: chunk 0: read failed after {loader.RETRIES + 1} attempts",
        ):
            batches(FrameStream("retries/data", 2, 100, "stream", seed=2, filesystem=fs))
        assert len(proxy.faults) == loader.RETRIES + 1
        ds = FrameStream(
            "retries/data", 2, 100, "stream", seed=2, filesystem=fs, skip_bad_shards=True
        )
        got = batches(ds)
    assert list(ds.skipped) == [f"retries/data/frames/{victim}"]
    victim_id = remote.session_ids.index(remote.sessions[remote.split_sessions[0]].id)
    assert {int(s) for b in got for s in b["session"][b["mask"]]} == set(remote.split_sessions) - {
        victim_id
    }


def test_chunks_of_one_zstd_frame_read_the_same(data, tmp_path):
    """Shards written before chunks were cut into segments (one zstd frame per chunk) give the
    same batches, by every reading path."""
    import pyarrow.parquet as pq
    import zstandard

    from ghframes.store.codec import segments_of

    old = tmp_path / "old"
    shutil.copytree(data, old)
    one_frame = zstandard.ZstdCompressor(level=6, write_content_size=True)
    for path in (old / "frames").rglob("*.parquet"):
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
        same(
            batches(FrameStream(data, 2, t, mode, seed=6)),
            batches(FrameStream(str(old), 2, t, mode, seed=6)),
        )
    sid = ghframes.open_dataset(data).sessions()[0].id
    assert np.array_equal(
        ghframes.open_dataset(data).session(sid).frames,
        ghframes.open_dataset(str(old)).session(sid).frames,
    )


def test_without_libzstd_the_batches_are_the_same(data, monkeypatch):
    """The python-zstandard fallback (no loadable libzstd) decodes segments identically."""
    from ghframes.training import loader

    for mode, t in (("stream", 160), ("window", 64)):
        fast = batches(FrameStream(data, 2, t, mode, seed=8))
        with monkeypatch.context() as m:
            m.setattr(loader._ZSTD, "lib", None)
            same(fast, batches(FrameStream(data, 2, t, mode, seed=8)))
