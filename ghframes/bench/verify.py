"""Verify benchmark: the peak memory and the speed of `ghframes verify` over one long session.

The session is the case that once made verify hold 4.6 GB: one commit emptying many long
files, every line cut with its own key. Its actions are the real plan's (commits.plan_commit,
played as session.render_session plays them); its frames are blank screens, since verify
decodes and counts them without looking at them, which spares drawing them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from ghframes.render.commits import plan_commit
from ghframes.render.session import FINAL_ACTION, RENDERER_VERSION, RenderOptions
from ghframes.render.terminal import COLS, ROWS
from ghframes.sample import write_edits
from ghframes.store import shards
from ghframes.store.codec import FRAMES_PER_CHUNK, encode_chunk
from ghframes.store.edits import commits_of, read_edits
from ghframes.store.frames import FRAMES_DIR, frames_schema, write_session
from ghframes.store.planes import PLANES

KEY = "local/long"


def long_file(lines: int) -> str:
    """The text of each file the long session empties."""
    return "".join(f"line {i} of a long file\n" for i in range(lines))


def write_long_session(data: str, files: int = 10, lines: int = 20_000) -> int:
    """Write DATA (edits and frames) holding one session: a commit emptying `files` files of
    `lines` lines each; return its number of frames."""
    tall = long_file(lines)
    rows = [
        {"commit_index": 0, "path": f"f{k:02d}.txt", "status": "modified", "before": tall}
        for k in range(files)
    ]
    write_edits(data, {KEY: [dict(row, after="") for row in rows]})
    fs, root = shards.filesystem(data)
    entry = shards.read_json(fs, f"{root}/edits/{shards.MANIFEST}")["repos"][KEY]
    (commit,) = commits_of(read_edits(fs, f"{root}/edits", entry["shards"], KEY)[0])
    unbounded = 1 << 40
    options = RenderOptions(
        max_frames_per_session=unbounded,
        max_typed_chars_per_change=unbounded,
        max_typed_chars_per_commit=unbounded,
        max_actions_per_change=unbounded,
        max_actions_per_commit=unbounded,
    )
    plan = plan_commit(commit, options)
    actions: list[str] = []  # action t is taken on frame t, as render_session records them
    for change in plan.changes:
        change["first_frame"] = -1
    for step in plan.steps:
        if step.change is not None and plan.changes[step.change]["first_frame"] < 0:
            plan.changes[step.change]["first_frame"] = len(actions)
        actions += [*step.command, "<Enter>"]
        if step.edit is not None:
            change = plan.changes[step.change]
            change["editor_first"], change["editor_actions"] = len(actions), len(step.edit.actions)
            actions += [*step.edit.actions, "<C-q>"]
    actions.append(FINAL_ACTION)
    n = len(actions)
    blank = np.full((FRAMES_PER_CHUNK, ROWS, COLS), ord(" "), np.uint32)
    full = encode_chunk(blank)
    starts = range(0, n, FRAMES_PER_CHUNK)
    sizes = [min(FRAMES_PER_CHUNK, n - s) for s in starts]
    encoded = [full if size == FRAMES_PER_CHUNK else encode_chunk(blank[:size]) for size in sizes]
    chunks = {
        "chunk": list(range(len(sizes))),
        "first_frame": list(starts),
        "num_frames": sizes,
        "frame_itemsize": [itemsize for itemsize, _ in encoded],
        "frames": [blob for _, blob in encoded],
        "actions": [actions[s : s + size] for s, size in zip(starts, sizes, strict=True)],
        "cursor": [bytes(2 * size) for size in sizes],
        "dt": [bytes(2 * size) for size in sizes],
        **{name: [b""] * len(sizes) for name in PLANES},  # default colours: every plane empty
    }
    sid = "long-0000000000-c000000"
    summary = {
        "key": KEY,
        "repo": KEY,
        "first_commit_index": 0,
        "last_commit_index": 0,
        "num_commits": 1,
        "num_frames": n,
        "num_changes": len(plan.changes),
        "skipped": {},
        "oversized": False,
        "unknown_sequences": 0,
    }
    metadata = dict(
        summary,
        commits=[[0, plan.commit, 0]],
        changes=plan.changes,
        options=options.as_dict(),
        renderer_version=RENDERER_VERSION,
    )
    size = write_session(fs, f"{root}/{FRAMES_DIR}/long.parquet", sid, chunks, metadata)
    manifest = {"table": "frames", "version": frames_schema().version}
    manifest["repos"] = {KEY: {"repo": KEY, "status": "ok", "sessions": [sid]}}
    manifest["sessions"] = {sid: dict(summary, shard="long.parquet", bytes=size)}
    shards.write_manifest(fs, f"{root}/{FRAMES_DIR}", manifest)
    return n


# Run in a fresh interpreter, so that its peak resident memory is verify's alone: VmHWM, which
# exec resets (ru_maxrss does not: a child starts with its parent's, the bench's own session).
_PEAK = """
def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
"""
_CHILD = (
    _PEAK
    + """
import json, sys, time
from ghframes.verify import verify_dataset
start = time.perf_counter()
problems = list(verify_dataset(sys.argv[1]))
elapsed = time.perf_counter() - start
print(json.dumps({"problems": problems, "seconds": elapsed, "peak_kib": peak_kib()}))
"""
)
_BASELINE = _PEAK + "import ghframes.verify\nprint(peak_kib())\n"


def bench_verify(files: int = 10, lines: int = 20_000) -> list[dict]:
    """Peak resident memory of verifying a session of about 200,000 frames (its frames decoded
    whole would be 1.5 GB), above an interpreter that only imported verify, and frames/s."""
    with tempfile.TemporaryDirectory() as tmp:
        frames = write_long_session(tmp, files, lines)
        env = dict(os.environ, PYTHONHASHSEED="0")
        run = [sys.executable, "-c"]
        done = subprocess.run([*run, _CHILD, tmp], capture_output=True, text=True, env=env)
        if done.returncode:
            raise RuntimeError(f"verify benchmark failed: {done.stderr.strip()}")
        got = json.loads(done.stdout)
        if got["problems"]:
            raise RuntimeError(f"verify benchmark: {got['problems'][0]}")
        base = subprocess.run([*run, _BASELINE], capture_output=True, text=True, env=env)
        baseline = int(base.stdout) if base.returncode == 0 else 0
    return [
        {"name": "verify.session_frames", "value": frames, "unit": "frames"},
        {
            "name": "verify.decoded_frames_mb",
            "value": round(frames * ROWS * COLS / 2**20),
            "unit": "MB",
        },
        {"name": "verify.peak_rss_mb", "value": round(got["peak_kib"] / 1024), "unit": "MB"},
        {
            "name": "verify.peak_rss_above_imports_mb",
            "value": round((got["peak_kib"] - baseline) / 1024),
            "unit": "MB",
        },
        {
            "name": "verify.frames_per_s",
            "value": round(frames / got["seconds"]),
            "unit": "frames/s",
        },
    ]
