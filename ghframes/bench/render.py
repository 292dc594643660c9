"""Render benchmark: frames per second per core over whole realistic sessions, bytes per frame."""

from __future__ import annotations

import tempfile
import time

from ghframes.realistic import realistic_history
from ghframes.render.session import RenderOptions, render_session
from ghframes.store.frames import write_session
from ghframes.store.shards import filesystem


def bench_render(seconds: float = 5.0) -> list[dict]:
    """Frames rendered per second on one core over whole realistic sessions, and bytes per frame.

    The sessions are the edit history the bench builds from this machine's installed Python
    sources (`realistic_history`); the timing covers planning, the editor, pyte, capture
    and zstd, everything but the Parquet write.
    """
    commits = realistic_history()
    options = RenderOptions()
    frames = 0
    elapsed = 0.0
    size = 0
    with tempfile.TemporaryDirectory() as tmp:
        fs, root = filesystem(tmp)
        while elapsed < seconds or frames == 0:
            start = time.perf_counter()
            chunks, metadata = render_session("github.com/bench/history", commits, options)
            elapsed += time.perf_counter() - start
            frames += metadata["num_frames"]
            if not size:
                size = write_session(fs, f"{root}/s.parquet", "bench", chunks, metadata)
                per_session = metadata["num_frames"]
    return [
        {
            "name": "render.frames_per_s_per_core",
            "value": round(frames / elapsed),
            "unit": "frames/s",
        },
        {
            "name": "render.bytes_per_frame",
            "value": round(size / per_session, 2),
            "unit": "bytes/frame",
        },
    ]
