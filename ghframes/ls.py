"""`ghframes ls DATA`: the sessions table (DATA/frames/_sessions.parquet) as text, JSON, CSV or Parquet."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ghframes.errors import GhframesError
from ghframes.store import shards
from ghframes.store.sessions import read_sessions_table
from ghframes.text import shown

# The text table: (heading, column, width); ids and repositories take what they need.
COLUMNS = (
    ("commits", "num_commits", 8),
    ("frames", "num_frames", 11),
    ("bytes", "bytes", 13),
    ("skipped", "skipped", 8),
    ("oversized", "oversized", 9),
)


def _encode(table: pa.Table, kind: str) -> bytes:
    out = pa.BufferOutputStream()
    if kind == "csv":
        pacsv.write_csv(table, out)
    else:
        pq.write_table(table, out, compression=shards.COMPRESSION)
    return out.getvalue().to_pybytes()


def write_export(table: pa.Table, kind: str, path: str) -> None:
    """Write `table` to the local file `path` as `kind` (csv or parquet), atomically."""
    target = os.path.abspath(path)
    if os.path.isdir(target):
        raise GhframesError(f"{path}: is a directory; give -o a file name")
    try:
        shards.write_bytes_atomic(pafs.LocalFileSystem(), target, _encode(table, kind))
    except OSError as exc:
        raise GhframesError(f"{path}: cannot write ({exc.strerror or exc})") from None


def text_lines(table: pa.Table) -> list[str]:
    """The table as aligned text lines, a heading first; names from repositories are shown."""
    rows = table.to_pylist()
    id_width = max([len("session"), *(len(r["id"]) for r in rows)])
    head = f"{'session':<{id_width}}  " + "".join(f"{h:>{w}} " for h, _, w in COLUMNS) + " repo"
    lines = [head]
    for r in rows:
        cells = "".join(
            f"{'yes' if r[c] is True else 'no' if r[c] is False else f'{r[c]:,}':>{w}} "
            for _, c, w in COLUMNS
        )
        lines.append(shown(f"{r['id']:<{id_width}}  {cells} {r['repo']}"))
    return lines


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.json and args.format is not None:
        raise GhframesError("ls: give --json or --format, not both")
    if args.output is not None and args.format is None:
        raise GhframesError("ls: -o FILE needs --format csv or parquet")
    if args.format is not None and args.output is None:
        raise GhframesError(f"ls: --format {args.format} needs -o FILE")
    table = read_sessions_table(args.data, args.repo)
    if args.format is not None:
        write_export(table, args.format, args.output)
        print(shown(f"wrote {args.output}: {table.num_rows} sessions as {args.format}"))
    elif args.json:
        print(json.dumps(table.to_pylist(), indent=1, sort_keys=True))
    else:
        print("\n".join(text_lines(table)))
    return 0
