"""Shard and manifest I/O: Parquet written atomically under deterministic names, read with a version check.

A shard appears under its final name only when complete (temporary name, then rename), and a
stage's manifest is written last. Every file beside the shards that is not one (manifests,
state files, temporaries) has a name starting with `_` or `.`, which pyarrow, pandas, Polars
and DuckDB skip, so that DATA/edits and DATA/frames read as Parquet datasets with no arguments. `DATA` may be a local path or any URI `pyarrow.fs` knows
(`s3://…`); on object stores a single PUT is already atomic, so no rename is needed there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ghframes.errors import GhframesError
from ghframes.store.schema import TableSchema

COMPRESSION = "zstd"
MANIFEST = "_manifest.json"
STATE = "_state.json"  # a repository's crawl state, DATA/edits/<key>/_state.json
# The names ghframes 0.1.0 gave them: still read, removed when the new name is written.
FORMER_NAMES = {MANIFEST: "manifest.json", STATE: "state.json"}


def filesystem(data: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root path of `data` (a local path or a URI such as `s3://bucket/x`)."""
    if "://" in data and not data.startswith("file://"):
        try:
            return pafs.FileSystem.from_uri(data)
        except (pa.ArrowInvalid, OSError) as exc:
            raise GhframesError(f"{data}: cannot open as a filesystem URI ({exc})") from None
    path = os.path.abspath(data.removeprefix("file://"))
    if os.path.exists(path) and not os.path.isdir(path):
        raise GhframesError(f"{data}: not a directory")
    return pafs.LocalFileSystem(), path


def safe_name(identity: str, max_chars: int = 60) -> str:
    """A file name derived from `identity` that is safe on every filesystem and unique to it.

    Nothing taken from a repository becomes part of a path unescaped: every character outside
    `[A-Za-z0-9._-]` becomes `_`, and a hash of the full identity keeps distinct inputs apart.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "_", identity).strip("._")[:max_chars] or "x"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"{slug}-{digest}"


def _tmp_name(path: str) -> str:
    head, tail = path.rsplit("/", 1)
    return f"{head}/.{tail}.tmp-{os.getpid()}"


def _is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


def write_bytes_atomic(fs: pafs.FileSystem, path: str, payload: bytes) -> None:
    """Write `payload` to `path` so that readers see either the old file or the whole new one."""
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    target = _tmp_name(path) if _is_local(fs) else path
    with fs.open_output_stream(target) as out:
        out.write(payload)
    if target != path:
        fs.move(target, path)


def write_json_atomic(fs: pafs.FileSystem, path: str, obj: object) -> None:
    write_bytes_atomic(fs, path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def write_table(
    fs: pafs.FileSystem,
    path: str,
    table: pa.Table,
    schema: TableSchema,
    row_group_size: int = 1024,
    footer_metadata: dict[str, str] | None = None,
    write_statistics: bool | list[str] = True,
) -> int:
    """Write `table` as a zstd Parquet shard of `schema` at `path`, atomically; return its bytes.

    `footer_metadata`: key-value pairs for the Parquet footer only (`footer_value` reads them),
    not also inside the stored Arrow schema, which would hold a second, base64 copy.
    `write_statistics`: True, False or the columns to keep min/max for (per row group, in the
    footer; a binary column's statistics hold whole values)."""
    table = table.cast(schema.arrow).replace_schema_metadata(schema.arrow.metadata)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    target = _tmp_name(path) if _is_local(fs) else path
    with pq.ParquetWriter(
        target,
        table.schema,
        filesystem=fs,
        compression=COMPRESSION,
        # min/max per row group only where the caller asks (the docstring says why not always)
        write_statistics=write_statistics,
        # the Arrow schema in the footer too, so that readers get back the exact Arrow types
        store_schema=True,
    ) as writer:
        writer.write_table(table, row_group_size=row_group_size)
        if footer_metadata:
            writer.add_key_value_metadata(footer_metadata)
    if target != path:
        fs.move(target, path)
    return fs.get_file_info(path).size


@dataclass(frozen=True)
class Retries:
    """How often a read is tried again after a transient error (an OSError other than a missing
    file, as remote storage gives), waiting `delay` seconds, then twice as long, ..."""

    count: int = 0  # attempts after the first
    delay: float = 0.1

    def __call__(self, read):
        """`read()`, tried up to `count` more times."""
        attempt = 0
        while True:
            try:
                return read()
            except FileNotFoundError:
                raise
            except OSError:
                if attempt == self.count:
                    raise
                time.sleep(self.delay * 2**attempt)
                attempt += 1

    def error(self, where: str, exc: Exception) -> GhframesError:
        """The error for a read of `where` that failed with `exc` (after every attempt)."""
        if self.count and isinstance(exc, OSError):
            return GhframesError(f"{where}: read failed after {self.count + 1} attempts ({exc})")
        return GhframesError(f"{where}: damaged shard ({exc})")


NO_RETRIES = Retries()


def read_json(fs: pafs.FileSystem, path: str, retries: Retries = NO_RETRIES) -> object | None:
    """The JSON document at `path`, or None if there is none.

    Anything else that keeps it from being read (storage that cannot be reached, after
    `retries`; a file where a folder should be; bytes that are not UTF-8 JSON) is a
    GhframesError naming `path`."""

    def read() -> bytes:
        with fs.open_input_stream(path) as src:
            return src.read()

    try:
        payload = retries(read)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if retries.count:
            raise retries.error(path, exc) from None
        raise GhframesError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise GhframesError(f"{path}: damaged JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise GhframesError(f"{path}: damaged JSON ({exc})") from None


def read_named_json(
    fs: pafs.FileSystem, folder: str, name: str, retries: Retries = NO_RETRIES
) -> tuple[str, object | None]:
    """The JSON document `name` (MANIFEST, STATE) in `folder`, else the one under its former
    name (FORMER_NAMES), and the path it was read from; (the path of `name`, None) if neither
    is there."""
    for candidate in (name, FORMER_NAMES.get(name)):
        if candidate is not None:
            path = f"{folder}/{candidate}"
            document = read_json(fs, path, retries)
            if document is not None:
                return path, document
    return f"{folder}/{name}", None


def write_named_json(fs: pafs.FileSystem, folder: str, name: str, obj: object) -> None:
    """Write `obj` as `name` in `folder` atomically, then remove the file under its former name
    (a dataset an earlier version wrote), which readers would otherwise still fall back to."""
    write_json_atomic(fs, f"{folder}/{name}", obj)
    former = f"{folder}/{FORMER_NAMES.get(name, name)}"
    if former != f"{folder}/{name}" and fs.get_file_info(former).type == pafs.FileType.File:
        fs.delete_file(former)


def read_manifest(
    fs: pafs.FileSystem, folder: str, table: TableSchema, retries: Retries = NO_RETRIES
) -> dict | None:
    """The manifest of `table` in `folder` (read_named_json), its table, version and shape
    checked (`TableSchema.check_manifest`), or None if there is none."""
    path, manifest = read_named_json(fs, folder, MANIFEST, retries)
    if manifest is not None:
        table.check_manifest(manifest, path)
    return manifest


def write_manifest(fs: pafs.FileSystem, folder: str, manifest: dict) -> None:
    """Publish `manifest` in `folder`, the last file a stage writes."""
    write_named_json(fs, folder, MANIFEST, manifest)


def footer_value(shard: pq.ParquetFile, key: str) -> str | None:
    """A `footer_metadata` value of `shard` (or, in shards written before it existed, the
    stored Arrow schema's)."""
    for metadata in (shard.metadata.metadata, shard.schema_arrow.metadata):
        raw = (metadata or {}).get(key.encode())
        if raw is not None:
            return raw.decode()
    return None


def open_shard(
    fs: pafs.FileSystem,
    path: str,
    schema: TableSchema,
    where: str | None = None,
    pre_buffer: bool = False,
    retries: Retries = NO_RETRIES,
) -> pq.ParquetFile:
    """Open the shard at `path` (its footer read) after checking it is a `schema` table of a
    readable version; errors name `where` (default: the path). `pre_buffer`: read a row group's
    column chunks in one request (one GET on object storage)."""
    where = where or path
    try:
        shard = retries(lambda: pq.ParquetFile(fs.open_input_file(path), pre_buffer=pre_buffer))
    except FileNotFoundError:
        raise GhframesError(f"{where}: shard is missing") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise retries.error(where, exc) from None
    schema.check(shard.schema_arrow.metadata, where)
    return shard


def read_table(fs: pafs.FileSystem, path: str, schema: TableSchema, columns=None) -> pa.Table:
    shard = open_shard(fs, path, schema)
    try:
        return shard.read(columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise GhframesError(f"{path}: damaged shard ({exc})") from None


def remove_stale_temporaries(fs: pafs.FileSystem, root: str) -> Iterator[str]:
    """Delete temporary files a killed writer left under `root`; yield each one removed."""
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    for info in fs.get_file_info(selector):
        if (
            info.type == pafs.FileType.File
            and ".tmp-" in info.base_name
            and info.base_name.startswith(".")
        ):
            fs.delete_file(info.path)
            yield info.path
