"""Edit shards (DATA/edits): one repository's rows read back in commit order, with their digest.

Shards of any 1.x version are read: columns a shard predates (1.1's `branch`, `summary`,
`new_dir`, `listing` in 1.0 shards) come back null, which the render reads as "not recorded".
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq

from ghframes.errors import GhframesError
from ghframes.store import schema

EDITS_DIR = "edits"


def read_edits(fs, edits_root: str, shard_paths: list[str], key: str) -> tuple[pa.Table, str]:
    """A repository's edit rows in commit order, and the sha256 of its shards' bytes."""
    edits = schema.load("edits")
    digest = hashlib.sha256(key.encode())
    tables = []
    for rel in shard_paths:
        path = f"{edits_root}/{rel}"
        try:
            with fs.open_input_stream(path) as src:
                payload = src.read()
        except FileNotFoundError:
            raise GhframesError(f"{path}: edits shard is missing") from None
        digest.update(hashlib.sha256(payload).digest())
        try:
            shard = pq.ParquetFile(pa.BufferReader(payload))
        except (pa.ArrowInvalid, OSError) as exc:
            raise GhframesError(f"{path}: damaged shard ({exc})") from None
        edits.check(shard.schema_arrow.metadata, path)
        tables.append(_as_current(shard.read(), edits.arrow))
    table = pa.concat_tables(tables) if tables else edits.arrow.empty_table()
    return table, digest.hexdigest()


def _as_current(table: pa.Table, current: pa.Schema) -> pa.Table:
    """`table` in the current schema's columns and order, null where it predates a column."""
    columns = [
        table.column(f.name) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in current
    ]
    return pa.Table.from_arrays(columns, schema=current)


def commits_of(table: pa.Table) -> list[list[dict]]:
    """Edit rows grouped by commit, in commit_index then path order."""
    table = table.sort_by([("commit_index", "ascending"), ("path", "ascending")])
    groups: list[list[dict]] = []
    last = None
    for row in table.to_pylist():
        if row["commit_index"] != last:
            groups.append([])
            last = row["commit_index"]
        groups[-1].append(row)
    return groups
