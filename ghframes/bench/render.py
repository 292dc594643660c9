"""Render benchmark: frames per second per core over whole realistic sessions, bytes per frame,
for the human typist (the default) against the replay typist, in the same run."""

from __future__ import annotations

import tempfile
import time

import pyarrow.parquet as pq

from ghframes.realistic import realistic_history
from ghframes.render.session import RenderOptions, render_session
from ghframes.store.frames import write_session
from ghframes.store.shards import filesystem

# The default (the human typist, colour) and what it is compared with, in the same run.
VARIANTS = {
    "human": RenderOptions(),
    "replay": RenderOptions(typist="replay"),
    "mono": RenderOptions(color=False),  # --no-color: characters only
}
# the rest: ids, counts, the footer
SHOWN_COLUMNS = ("frames", "fg", "bg", "attrs", "actions", "cursor", "dt")


def _column_bytes(path: str) -> dict[str, int]:
    """Compressed bytes of each column in a Parquet file, over its row groups."""
    meta = pq.ParquetFile(path).metadata
    sizes: dict[str, int] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            name = column.path_in_schema.split(".")[0]
            sizes[name] = sizes.get(name, 0) + column.total_compressed_size
    return sizes


def bench_render(seconds: float = 5.0) -> list[dict]:
    """Frames rendered per second on one core over whole realistic sessions, and bytes per frame,
    for each of VARIANTS.

    The sessions are the edit history the bench builds from this machine's installed Python
    sources (`realistic_history`); the timing covers planning, the editor, highlighting, pyte,
    capture and zstd, everything but the Parquet write, after one untimed session of each (which
    compiles the lexers' tables, a cost each worker pays once). The variants take turns, so all
    see the same machine load; each gets at least `seconds`.
    """
    commits = realistic_history()
    frames = dict.fromkeys(VARIANTS, 0)
    elapsed = dict.fromkeys(VARIANTS, 0.0)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        fs, root = filesystem(tmp)
        # Untimed: a first session, which also compiles the lexers' tables (once per worker).
        for variant, options in VARIANTS.items():
            chunks, metadata = render_session("github.com/bench/history", commits, options)
            rows += _storage(fs, f"{root}/{variant}.parquet", chunks, metadata, variant)
        while min(elapsed.values()) < seconds or not all(frames.values()):
            for variant, options in VARIANTS.items():
                start = time.perf_counter()
                chunks, metadata = render_session("github.com/bench/history", commits, options)
                elapsed[variant] += time.perf_counter() - start
                frames[variant] += metadata["num_frames"]
    rate = {v: frames[v] / elapsed[v] for v in VARIANTS}
    return [
        {"name": "render.frames_per_s_per_core", "value": round(rate["human"]), "unit": "frames/s"},
        *(
            {
                "name": f"render.frames_per_s_per_core.{v}",
                "value": round(rate[v]),
                "unit": "frames/s",
            }
            for v in VARIANTS
            if v != "human"
        ),
        {
            "name": "render.human_typist_cost",
            "value": round(rate["replay"] / rate["human"], 3),
            "unit": "x the replay typist's time per frame",
        },
        {
            "name": "render.colour_cost",
            "value": round(rate["mono"] / rate["human"], 3),
            "unit": "x the time per frame of --no-color",
        },
        *rows,
    ]


def _storage(fs, path: str, chunks: dict, metadata: dict, variant: str) -> list[dict]:
    """Bytes per frame of the session written to `path`, in all and by column."""
    size = write_session(fs, path, "bench", chunks, metadata)
    n = metadata["num_frames"]
    suffix = "" if variant == "human" else f".{variant}"
    rows = [
        {
            "name": f"render.bytes_per_frame{suffix}",
            "value": round(size / n, 2),
            "unit": "bytes/frame",
        }
    ]
    columns = _column_bytes(path)
    shares = {c: columns.get(c, 0) for c in SHOWN_COLUMNS}
    shares["other"] = size - sum(shares.values())  # small columns, footer
    for column, nbytes in shares.items():
        rows.append(
            {
                "name": f"render.column_bytes_per_frame.{column}{suffix}",
                "value": round(nbytes / n, 3),
                "unit": f"bytes/frame ({nbytes / size:.0%})",
            }
        )
    return rows
