"""The sessions table, DATA/frames/_sessions.parquet: one row per session the manifest lists.

Columns from schemas/sessions.json. The render writes it just before the manifest; a dataset
rendered before it existed has none, and its rows are then built from the manifest.
"""

from __future__ import annotations

import functools
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from ghframes.errors import GhframesError
from ghframes.store import schema, shards
from ghframes.store.frames import FRAMES_DIR, frames_schema

SESSIONS = "_sessions.parquet"  # `_`: readers of DATA/frames as a Parquet dataset skip it


def sessions_table(manifest: dict) -> pa.Table:
    """The rows of every session of a frames `manifest`, ordered by id."""
    table = schema.load("sessions")
    rows = []
    for sid, s in sorted(manifest["sessions"].items()):
        skipped = dict(sorted(s.get("skipped", {}).items()))
        row = {name: s.get(name) for name in table.names}
        row.update(id=sid, skipped=sum(skipped.values()), skipped_by_reason=json.dumps(skipped))
        row.update(
            oversized=bool(s.get("oversized")), unknown_sequences=s.get("unknown_sequences", 0)
        )
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=table.arrow)


def write_sessions_table(fs: pafs.FileSystem, frames_root: str, manifest: dict) -> None:
    """Write the sessions table of `manifest` into `frames_root` (DATA/frames), atomically."""
    shards.write_table(
        fs, f"{frames_root}/{SESSIONS}", sessions_table(manifest), schema.load("sessions")
    )


def read_sessions_table(data: str, repo: str | None = None) -> pa.Table:
    """The sessions table of DATA (built from the manifest where an older render wrote none),
    only the sessions of repository `repo` when given: its identity, its key, or its identity
    without the first part (`pallets/click` for `github.com/pallets/click`, a local folder's
    `proj` for `local-HASH/proj`, which two folders of one name share)."""
    fs, root = shards.filesystem(data)
    frames_root = f"{root}/{FRAMES_DIR}"
    manifest = shards.read_manifest(fs, frames_root, frames_schema())
    if manifest is None:
        raise GhframesError(f"{data}: no rendered frames (run `ghframes render {data}` first)")
    path = f"{frames_root}/{SESSIONS}"
    table = None
    if fs.get_file_info(path).type == pafs.FileType.File:
        table = shards.read_table(fs, path, schema.load("sessions"))
    if table is None or table["id"].to_pylist() != sorted(manifest["sessions"]):
        table = sessions_table(manifest)  # none, or not this manifest's (another writer's)
    if repo is not None:
        short = pc.replace_substring_regex(table["repo"], r"^[^/]*/", "", max_replacements=1)
        names = [table["repo"], table["key"], short]
        table = table.filter(functools.reduce(pc.or_, (pc.equal(n, repo) for n in names)))
    return table
