"""The streaming dataloader on S3: a real S3 server (moto's) on loopback, behind a proxy that
logs every request and injects faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import batches, same
from ghframes.errors import GhframesError
from ghframes.realistic import realistic_edit_rows
from ghframes.sample import write_edits
from ghframes.training.loader import FrameStream


@pytest.fixture
def data(loader_data) -> str:
    """The DATA the loader tests share (conftest.loader_data)."""
    return loader_data


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
    write_edits(root, {"github.com/bench/long": realistic_edit_rows(8, 2)})
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
    gone = remote.sessions[remote.split_indices[0]].shard
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
    shards = {remote.sessions[i].shard for i in remote.split_indices}
    assert len(proxy.faults) == 3 * len(shards)
    assert {kind for _, _, kind in proxy.faults} == {503, "cut"}

    victim = remote.sessions[remote.split_indices[0]].shard

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
    victim_id = remote.session_ids.index(remote.sessions[remote.split_indices[0]].id)
    assert {int(s) for b in got for s in b["session"][b["mask"]]} == set(remote.split_indices) - {
        victim_id
    }
