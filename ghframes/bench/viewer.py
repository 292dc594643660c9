"""Viewer benchmark: opening a million-frame session, and a search through all of it."""

from __future__ import annotations

import tempfile
import time

from ghframes.realistic import realistic_history
from ghframes.render.session import RenderOptions, render_session
from ghframes.store.chunks import open_lazy
from ghframes.store.frames import write_one_session_dataset


def bench_viewer(num_frames: int = 1_000_000) -> list[dict]:
    """What a person waits for in the viewer, on a session of `num_frames` frames made of the
    render benchmark's real chunks repeated: opening it and showing its last frame, and a
    search that finds nothing (so it reads every frame)."""
    chunks, _ = render_session("github.com/bench/history", realistic_history(), RenderOptions())
    real = list(zip(chunks["num_frames"], chunks["frame_itemsize"], chunks["frames"], strict=True))
    encoded, total = [], 0
    while total < num_frames:
        count, itemsize, blob = real[len(encoded) % len(real)]
        encoded.append((count, itemsize, blob))
        total += count
    with tempfile.TemporaryDirectory() as tmp:
        sid = write_one_session_dataset(tmp, "bench", encoded)
        start = time.perf_counter()
        session = open_lazy(tmp, sid)
        session.frame(session.num_frames - 1)
        opened = time.perf_counter() - start
        start = time.perf_counter()
        assert session.search("no such text in ghframes' bench", 0) is None
        searched = time.perf_counter() - start
    return [
        {
            "name": "viewer.open_session_and_show_last_frame",
            "value": round(opened, 3),
            "unit": f"s ({total:,} frames)",
        },
        {"name": "viewer.search_no_match", "value": round(total / searched), "unit": "frames/s"},
    ]
