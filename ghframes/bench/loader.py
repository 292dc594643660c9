"""Loader benchmark: decoded frames per second per core into batch tensors, 1 and 2 workers, with
every channel (characters and the colour planes) and with characters alone, in the same run."""

from __future__ import annotations

import os
import tempfile
import time

import pyarrow.fs as pafs
import torch

from ghframes.pipelines.render import render_dataset
from ghframes.realistic import realistic_edit_rows
from ghframes.render.session import RenderOptions
from ghframes.sample import write_edits
from ghframes.store import shards
from ghframes.store.frames import FRAMES_DIR
from ghframes.training.loader import FrameStream


def build_bench_data(data: str, num_files: int = 8, edits_per_file: int = 3) -> None:
    """Render a realistic history into DATA (edits written here, frames by the render stage)."""
    write_edits(data, {"bench/loader": realistic_edit_rows(num_files, edits_per_file)})
    render_dataset(data, RenderOptions(max_frames_per_session=4000), num_cpus=2)


def _rate(make, epochs: int) -> float:
    """Frames per second over `epochs`, timed from each epoch's first batch (worker start-up
    excluded)."""
    frames, spent = 0, 0.0
    for epoch in range(epochs):
        it = iter(make(epoch))
        next(it)
        start = time.perf_counter()
        for batch in it:
            frames += int(batch["mask"].sum())
        spent += time.perf_counter() - start
    return frames / spent


def _replicate(data: str, copies: int) -> str:
    """A manifest listing every session `copies` times (same shards): a larger epoch to time."""
    fs, root = shards.filesystem(data)
    manifest = shards.read_json(fs, f"{root}/{FRAMES_DIR}/{shards.MANIFEST}")
    manifest["sessions"] = {
        f"{sid}~{k}": s for sid, s in manifest["sessions"].items() for k in range(copies)
    }
    out = f"{root}/bench-x{copies}"
    shards.write_manifest(fs, f"{out}/{FRAMES_DIR}", manifest)
    for info in fs.get_file_info(pafs.FileSelector(f"{root}/{FRAMES_DIR}")):
        if info.type == pafs.FileType.Directory:
            link = f"{out}/{FRAMES_DIR}/{info.base_name}"
            if not os.path.exists(link):
                os.symlink(info.path, link)
    return out


def bench_loader(
    data: str | None = None, batch_size: int = 8, seq_len: int = 256, copies: int = 30
) -> list[dict]:
    """Decoded frames per second per core into the batch tensors, from local shards in the page
    cache: one process with every channel the data has (characters and colour planes) and with
    characters alone, then a DataLoader with 2 workers (its rate / 2, every channel). Without
    `data`, a realistic history is rendered into a temporary DATA first (about 15 s); its
    sessions are listed `copies` times so that an epoch lasts long enough to time."""
    tmp = None
    if data is None:
        tmp = tempfile.TemporaryDirectory(prefix="ghframes-bench-loader-")
        data = tmp.name
        build_bench_data(data)
    data = _replicate(data, copies)
    rows = []
    try:
        for mode in ("stream", "window"):
            for channels, label in ((None, "all channels"), (("chars",), "chars only")):
                ds = FrameStream(
                    data, batch_size, seq_len, mode, seed=0, eval_fraction=0.0, channels=channels
                )

                def one(epoch, ds=ds):
                    ds.set_epoch(epoch)
                    return iter(ds)

                _rate(one, 1)  # warm: page cache, shard cache
                rows.append(
                    {
                        "name": f"loader {mode} T={seq_len}, 1 worker, {label}",
                        "value": round(_rate(one, 3)),
                        "unit": f"frames/s/core ({'+'.join(ds.channels)})",
                    }
                )
                if channels is not None:
                    continue  # the DataLoader rows: every channel

                def two(epoch, ds=ds):
                    ds.set_epoch(epoch)
                    return torch.utils.data.DataLoader(
                        ds, batch_size=None, num_workers=2, persistent_workers=False
                    )

                value = _rate(two, 3)
                rows.append(
                    {
                        "name": f"loader {mode} T={seq_len}, 2 workers (total / 2), {label}",
                        "value": round(value / 2),
                        "unit": "frames/s/core",
                    }
                )
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows
