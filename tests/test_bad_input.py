"""Bad input, as a user meets it: every case through the real command line in a subprocess.

Each case must end with a non-zero exit, exactly one line on stderr that names the input and
says what is wrong (`ghframes: error: <input>: <problem>`), no traceback, and nothing written:
the folder holding DATA and everything else the case made is byte-identical before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ghframes.store import schema

GHFRAMES = (sys.executable, "-m", "ghframes")
TRAIN = (sys.executable, "-m", "ghframes.training.train")
# Bytes that are neither UTF-8 nor anything else (a binary file where JSON should be).
GARBAGE = bytes(range(128, 256)) * 8


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, ray_local):
    """A small DATA crawled and rendered from the sample repository (once per module), and
    the repository: {"data", "repo", "session"}; three sessions, so that the trainer has a
    held-out one, and `session` is the first."""
    from ghframes import cli

    root = tmp_path_factory.mktemp("bad-input")
    repo, data = root / "repo", root / "data"
    subprocess.run([sys.executable, "-m", "ghframes.sample", str(repo)], check=True, stdout=-3)
    env = dict(os.environ)
    assert cli.main(["crawl", str(repo), "--out", str(data), "--no-progress"], env=env) == 0
    assert (
        cli.main(
            ["render", str(data), "--no-progress", "--max-frames-per-session", "2000"], env=env
        )
        == 0
    )
    sessions = json.loads((data / "frames/_manifest.json").read_text())["sessions"]
    assert len(sessions) > 1
    return {"data": data, "repo": repo, "session": min(sessions)}


# --- what each case does to its copy of DATA ------------------------------------------------


def frame_shard(data: Path) -> Path:
    """The shard of the first session (the one the cases name)."""
    sessions = json.loads((data / "frames/_manifest.json").read_text())["sessions"]
    return data / "frames" / sessions[min(sessions)]["shard"]


def edits_shard(data: Path) -> Path:
    (path,) = (data / "edits").glob("*/*.parquet")
    return path


def write(rel: str, payload: bytes | str | object) -> Callable[[Path], None]:
    """Replace DATA/rel by `payload` (bytes as they are, str as text, anything else as JSON)."""

    def prepare(data: Path) -> None:
        path = data / rel
        if isinstance(payload, bytes):
            path.write_bytes(payload)
        else:
            path.write_text(payload if isinstance(payload, str) else json.dumps(payload))

    return prepare


def edit_manifest(rel: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    """Replace the manifest DATA/rel by `change(manifest)`, written as JSON."""

    def prepare(data: Path) -> None:
        path = data / rel
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return prepare


def version(manifest: dict, v: str = "99.0") -> dict:
    return dict(manifest, version=v)


def damage_shard(which: Callable[[Path], Path], how: str) -> Callable[[Path], None]:
    """Damage a shard: `truncate` it to half, replace it by `garbage`, or rewrite it whole with
    its footer's `version` 99.0 or its session description `footer` not JSON."""

    def prepare(data: Path) -> None:
        path = which(data)
        if how == "truncate":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        elif how == "garbage":
            path.write_bytes(GARBAGE)
        else:
            table = pq.read_table(path)
            meta = dict(table.schema.metadata)
            if how == "version":
                meta[schema.VERSION_KEY] = b"99.0"
            else:
                meta[b"ghframes.session"] = b'{"repo": "x", "num_frames'
            pq.write_table(table.replace_schema_metadata(meta), path)

    return prepare


def make_file(data: Path) -> None:
    shutil.rmtree(data)
    data.write_text("not a dataset\n")


def make_empty_repo(data: Path) -> None:
    subprocess.run(["git", "init", "-q", str(data.parent / "empty")], check=True)


def make_plain_dir(data: Path) -> None:
    (data.parent / "plain").mkdir()
    (data.parent / "plain" / "notes.txt").write_text("hello\n")


def make_random_checkpoint(data: Path) -> None:
    (data.parent / "ckpt.pt").write_bytes(os.urandom(4096))


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the catalogue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """`argv` after the program (`{data}`, `{tmp}`, `{repo}`, `{session}`, `{s3}` filled in);
    the one stderr line must contain `names`; `prepare(data)` damages the copy of DATA first."""

    argv: str
    names: str
    prepare: Callable[[Path], None] | None = None
    program: tuple[str, ...] = GHFRAMES
    code: int = 2
    env: dict = field(default_factory=dict)


EM, FM = "edits/_manifest.json", "frames/_manifest.json"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_EC2_METADATA_DISABLED": "true",
}
RUN = "--out {tmp}/run --steps 1 --device cpu --no-progress"

CASES = {
    # missing, wrong kind, unreachable
    "stats-nonexistent": Case("stats {tmp}/nope", "{tmp}/nope"),
    "verify-nonexistent": Case("verify {tmp}/nope", "{tmp}/nope"),
    "render-nonexistent": Case("render {tmp}/nope --no-progress", "{tmp}/nope"),
    "view-nonexistent": Case("view {tmp}/nope --session x", "{tmp}/nope"),
    "export-nonexistent": Case(
        "export {tmp}/nope --session x --format cast -o {tmp}/x.cast", "{tmp}/nope"
    ),
    "train-nonexistent": Case(f"--data {{tmp}}/nope {RUN}", "{tmp}/nope", program=TRAIN),
    "stats-plain-dir": Case("stats {tmp}/plain", "{tmp}/plain", make_plain_dir),
    "crawl-plain-dir": Case("crawl {tmp}/plain --out {tmp}/out", "{tmp}/plain", make_plain_dir),
    "crawl-nonexistent": Case("crawl {tmp}/nope --out {tmp}/out", "{tmp}/nope"),
    "crawl-empty-repo": Case("crawl {tmp}/empty --out {tmp}/out", "{tmp}/empty", make_empty_repo),
    "crawl-malformed-owner-name": Case("crawl a/b/c --out {tmp}/out", "a/b/c"),
    "crawl-out-unwritable": Case("crawl {repo} --out /proc/x", "/proc/x"),
    "crawl-out-file": Case("crawl {repo} --out {data}/edits/_manifest.json", "_manifest.json"),
    "render-data-file": Case("render {data} --no-progress", "{data}", make_file),
    "stats-data-file": Case("stats {data}", "{data}", make_file),
    "verify-data-file": Case("verify {data}", "{data}", make_file),
    "view-data-file": Case("view {data} --session x", "{data}", make_file),
    "export-data-file": Case(
        "export {data} --session x --format cast -o {tmp}/x.cast", "{data}", make_file
    ),
    "train-data-file": Case(f"--data {{data}} {RUN}", "{data}", make_file, program=TRAIN),
    "stats-s3-unreachable": Case("stats {s3}", "bucket/data", env=S3_ENV),
    "verify-s3-unreachable": Case("verify {s3}", "bucket/data", env=S3_ENV),
    "render-s3-unreachable": Case("render {s3} --no-progress", "bucket/data", env=S3_ENV),
    "view-s3-unreachable": Case("view {s3} --session x", "bucket/data", env=S3_ENV),
    # the edits manifest
    "crawl-edits-manifest-binary": Case("crawl {repo} --out {data}", EM, write(EM, GARBAGE)),
    "crawl-edits-manifest-list": Case("crawl {repo} --out {data}", EM, write(EM, [1, 2])),
    "crawl-edits-manifest-v99": Case("crawl {repo} --out {data}", EM, edit_manifest(EM, version)),
    "render-edits-manifest-binary": Case("render {data} --no-progress", EM, write(EM, GARBAGE)),
    "render-edits-manifest-list": Case("render {data} --no-progress", EM, write(EM, [1, 2])),
    "render-edits-manifest-truncated": Case(
        "render {data} --no-progress", EM, write(EM, '{"repos": {')
    ),
    "render-edits-manifest-v99": Case(
        "render {data} --no-progress", EM, edit_manifest(EM, version)
    ),
    "render-edits-manifest-repos-list": Case(
        "render {data} --no-progress", EM, edit_manifest(EM, lambda m: dict(m, repos=[]))
    ),
    "stats-edits-manifest-binary": Case("stats {data}", EM, write(EM, GARBAGE)),
    "stats-edits-manifest-list": Case("stats {data}", EM, write(EM, [1, 2])),
    "stats-edits-manifest-v99": Case("stats {data}", EM, edit_manifest(EM, version)),
    "stats-edits-manifest-repos-list": Case(
        "stats {data}", EM, edit_manifest(EM, lambda m: dict(m, repos=[]))
    ),
    "verify-edits-manifest-binary": Case("verify {data}", EM, write(EM, GARBAGE)),
    "verify-edits-manifest-list": Case("verify {data}", EM, write(EM, [1, 2])),
    # the frames manifest
    "stats-frames-manifest-binary": Case("stats {data}", FM, write(FM, GARBAGE)),
    "stats-frames-manifest-sessions-list": Case(
        "stats {data}", FM, edit_manifest(FM, lambda m: dict(m, sessions=[]))
    ),
    "verify-frames-manifest-binary": Case("verify {data}", FM, write(FM, GARBAGE)),
    "verify-frames-manifest-list": Case("verify {data}", FM, write(FM, [1, 2])),
    "verify-frames-manifest-truncated": Case("verify {data}", FM, write(FM, '{"sessions": {')),
    "verify-frames-manifest-v99": Case("verify {data}", FM, edit_manifest(FM, version)),
    "view-frames-manifest-binary": Case("view {data} --session {session}", FM, write(FM, GARBAGE)),
    "view-frames-manifest-sessions-list": Case(
        "view {data} --session {session}", FM, edit_manifest(FM, lambda m: dict(m, sessions=[]))
    ),
    "export-frames-manifest-list": Case(
        "export {data} --session {session} --format cast -o {tmp}/x.cast", FM, write(FM, [1, 2])
    ),
    "train-frames-manifest-binary": Case(
        f"--data {{data}} {RUN}", FM, write(FM, GARBAGE), program=TRAIN
    ),
    "train-frames-manifest-list": Case(
        f"--data {{data}} {RUN}", FM, write(FM, [1, 2]), program=TRAIN
    ),
    "train-frames-manifest-v99": Case(
        f"--data {{data}} {RUN}", FM, edit_manifest(FM, version), program=TRAIN
    ),
    # shards
    "verify-frame-shard-truncated": Case(
        "verify {data}", ".parquet", damage_shard(frame_shard, "truncate"), code=1
    ),
    "verify-frame-shard-garbage": Case(
        "verify {data}", ".parquet", damage_shard(frame_shard, "garbage"), code=1
    ),
    "verify-frame-shard-v99": Case(
        "verify {data}", ".parquet", damage_shard(frame_shard, "version"), code=1
    ),
    "verify-frame-footer-garbage": Case(
        "verify {data}", ".parquet", damage_shard(frame_shard, "footer"), code=1
    ),
    "export-frame-footer-garbage": Case(
        "export {data} --session {session} --format cast -o {tmp}/x.cast",
        ".parquet",
        damage_shard(frame_shard, "footer"),
    ),
    "export-frame-shard-truncated": Case(
        "export {data} --session {session} --format cast -o {tmp}/x.cast",
        ".parquet",
        damage_shard(frame_shard, "truncate"),
    ),
    "view-frame-shard-garbage": Case(
        "view {data} --session {session}", ".parquet", damage_shard(frame_shard, "garbage")
    ),
    "view-frame-footer-garbage": Case(
        "view {data} --session {session}", ".parquet", damage_shard(frame_shard, "footer")
    ),
    "verify-edits-shard-garbage": Case(
        "verify {data}", ".parquet", damage_shard(edits_shard, "garbage")
    ),
    "verify-edits-shard-v99": Case(
        "verify {data}", ".parquet", damage_shard(edits_shard, "version")
    ),
    # sessions and frames
    "view-unknown-session": Case("view {data} --session nope", "nope"),
    "export-unknown-session": Case(
        "export {data} --session nope --format cast -o {tmp}/x.cast", "nope"
    ),
    "verify-unknown-session": Case("verify {data} --session nope", "nope"),
    "view-frame-out-of-range": Case("view {data} --session {session} --frame 999999", "999999"),
    "export-png-frame-out-of-range": Case(
        "export {data} --session {session} --format png --frame 999999 -o {tmp}/x.png", "999999"
    ),
    "export-from-out-of-range": Case(
        "export {data} --session {session} --format cast --from 999999 -o {tmp}/x.cast", "999999"
    ),
    "export-output-existing-dir": Case(
        "export {data} --session {session} --format cast -o {data}", "{data}"
    ),
    "export-output-missing-dir": Case(
        "export {data} --session {session} --format cast -o {tmp}/no/x.cast", "{tmp}/no/x.cast"
    ),
    # option values
    "crawl-max-wait-nan": Case("crawl {repo} --out {tmp}/out --max-wait nan", "nan"),
    "crawl-max-wait-inf": Case("crawl {repo} --out {tmp}/out --max-wait inf", "inf"),
    "crawl-max-wait-negative": Case("crawl {repo} --out {tmp}/out --max-wait -5", "-5"),
    "crawl-max-file-bytes-zero": Case(
        "crawl {repo} --out {tmp}/out --max-file-bytes 0", "--max-file-bytes 0"
    ),
    "crawl-limit-not-a-number": Case("crawl {repo} --out {tmp}/out --limit many", "many"),
    "crawl-no-source": Case("crawl --out {tmp}/out", "SOURCE"),
    "export-cps-nan": Case(
        "export {data} --session {session} --format cast --cps nan -o {tmp}/x.cast", "nan"
    ),
    "export-cps-zero": Case(
        "export {data} --session {session} --format cast --cps 0 -o {tmp}/x.cast", "0"
    ),
    "export-format-unknown": Case(
        "export {data} --session {session} --format mp4 -o {tmp}/x.mp4", "mp4"
    ),
    "view-frame-not-a-number": Case("view {data} --session {session} --frame x", "'x'"),
    "unknown-command": Case("frobnicate", "frobnicate"),
    # the trainer
    "train-lr-muon-nan": Case(f"--data {{data}} {RUN} --lr-muon nan", "nan", program=TRAIN),
    "train-grad-clip-nan": Case(f"--data {{data}} {RUN} --grad-clip nan", "nan", program=TRAIN),
    "train-out-unwritable": Case(
        "--data {data} --out /proc/x --steps 1 --device cpu", "/proc/x", program=TRAIN
    ),
    "train-out-file": Case(
        "--data {data} --out {data}/frames/_manifest.json --steps 1 --device cpu",
        "_manifest.json",
        program=TRAIN,
    ),
    "train-resume-random-bytes": Case(
        f"--data {{data}} {RUN} --resume {{tmp}}/ckpt.pt",
        "ckpt.pt",
        make_random_checkpoint,
        program=TRAIN,
    ),
}


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under `root`, each file by the sha256 of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run(case: Case, tmp: Path, rendered: dict) -> tuple[subprocess.CompletedProcess, dict]:
    """Run `case` in `tmp` (DATA at tmp/data); return what it did and the values filled in."""
    fill = {
        "data": str(tmp / "data"),
        "tmp": str(tmp),
        "repo": str(rendered["repo"]),
        "session": rendered["session"],
        "s3": f"s3://bucket/data?endpoint_override=127.0.0.1:{closed_port()}&scheme=http"
        "&region=us-east-1&connect_timeout=1&request_timeout=1",
    }
    argv = [part.format(**fill) for part in case.argv.split()]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **case.env)
    done = subprocess.run(
        [*case.program, *argv],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        cwd=tmp,
    )
    return done, fill


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_bad_input_is_one_line_naming_it_and_writes_nothing(case_id, tmp_path, rendered):
    case = CASES[case_id]
    tmp = tmp_path / "t"
    tmp.mkdir()
    # prepared, then snapshot: what the command may not change is everything the case made
    data = tmp / "data"
    shutil.copytree(rendered["data"], data)
    if case.prepare is not None:
        case.prepare(data)
    before = snapshot(tmp)
    done, fill = run(case, tmp, rendered)
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == case.code, (done.returncode, done.stderr)
    assert len(lines) == 1, done.stderr
    (line,) = lines
    # verify reports a damaged shard as what it found (exit 1), every other command as an error
    assert line.startswith(("ghframes: error: ", "train: error: ", "ghframes: mismatch: ")), line
    assert case.names.format(**fill) in line, line
    assert snapshot(tmp) == before, "the command wrote or changed files"


def test_stdout_closed_early_ends_quietly(rendered):
    """`ghframes stats DATA | head -0`: the reader goes before the output comes."""
    stats = subprocess.Popen(
        [*GHFRAMES, "stats", str(rendered["data"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stats.stdout.close()  # before the program has even started: its first write meets EPIPE
    stderr = stats.stderr.read().decode()
    assert stats.wait(timeout=60) in (0, 141), stderr
    assert stderr == ""


def test_a_file_name_that_is_not_utf8_is_one_counted_skip(make_repo, tmp_path, ray_local):
    """A repository with one Latin-1 file name is crawled whole: that file is one skip."""
    from ghframes import cli

    r = make_repo()
    r.commit("add", {"a.txt": "one\n"})
    (r.path / os.fsdecode("caf\xe9.txt".encode("latin-1"))).write_text("x\n")
    r.commit("latin-1 name", {"a.txt": "two\n"})
    data = tmp_path / "data"
    assert cli.main(["crawl", str(r.path), "--out", str(data), "--no-progress"], env={}) == 0
    (entry,) = json.loads((data / "edits/_manifest.json").read_text())["repos"].values()
    assert (entry["status"], entry["commits"], entry["changes"]) == ("ok", 2, 2)
    assert entry["skipped"] == {"path_not_utf8": 1}
