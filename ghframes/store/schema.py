"""Load the versioned table definitions in `schemas/` as Arrow schemas; check shard versions.

Every writer and reader gets its columns from here, so `schemas/*.json` is the only place they
are listed.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import dataclass

import pyarrow as pa

from ghframes.errors import GhframesError

# Keys under which every shard records what it is, in its Parquet key-value metadata.
TABLE_KEY = b"ghframes.table"
VERSION_KEY = b"ghframes.schema_version"
# What every reader of a table's manifest indexes: these keys, each an object of objects
# (repository or session id -> its entry).
MANIFEST_COLLECTIONS = {"edits": ("repos",), "frames": ("repos", "sessions")}


@dataclass(frozen=True)
class TableSchema:
    """One table's definition: name, `MAJOR.MINOR` version, Arrow schema and documentation."""

    table: str
    version: str
    arrow: pa.Schema
    doc: dict

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def names(self) -> list[str]:
        return self.arrow.names

    @property
    def reads(self) -> tuple[str, ...]:
        """The major versions a reader of this definition reads: its own, and those its `reads`
        lists (frames 2.0 reads 1.x shards, without colour)."""
        return tuple(self.doc.get("reads", [str(self.major)]))

    def check(self, metadata: dict[bytes, bytes] | None, where: str) -> None:
        """Refuse a shard of another table or of an unknown major version, naming `where`."""
        metadata = metadata or {}
        table = metadata.get(TABLE_KEY, b"").decode()
        if table != self.table:
            raise GhframesError(
                f"{where}: not a ghframes {self.table} shard (table={table or 'none'})"
            )
        self.check_version(metadata.get(VERSION_KEY, b"").decode(), where)

    def check_manifest(self, manifest: object, where: str) -> None:
        """Refuse a manifest of another table, of an unknown major version or of another shape
        (MANIFEST_COLLECTIONS), naming `where`."""
        if not isinstance(manifest, dict):
            raise GhframesError(
                f"{where}: not a ghframes {self.table} manifest (a JSON "
                f"{_json_kind(manifest)}, not an object)"
            )
        if manifest.get("table") != self.table:
            raise GhframesError(
                f"{where}: not a ghframes {self.table} manifest (table={manifest.get('table')})"
            )
        self.check_version(str(manifest.get("version", "")), where)
        for key in MANIFEST_COLLECTIONS.get(self.table, ()):
            if key not in manifest:
                raise GhframesError(f"{where}: damaged manifest (no {key!r})")
            entries = manifest[key]
            if not isinstance(entries, dict):
                raise GhframesError(
                    f"{where}: damaged manifest ({key!r} is a JSON {_json_kind(entries)}, "
                    "not an object)"
                )
            for name, entry in entries.items():
                if not isinstance(entry, dict):
                    raise GhframesError(
                        f"{where}: damaged manifest ({key}[{name!r}] is a JSON "
                        f"{_json_kind(entry)}, not an object)"
                    )

    def check_version(self, version: str, where: str) -> None:
        """Refuse data written under a major version of this table's schema that it does not
        read (`reads`)."""
        if version.split(".")[0] not in self.reads:
            raise GhframesError(
                f"{where}: {self.table} schema version {version or 'none'} is not supported "
                f"(this ghframes reads {self.major}.x)"
            )


def _json_kind(value: object) -> str:
    """What `value`, decoded from JSON, is, in JSON's words (a missing key: none)."""
    if value is None:
        return "null"
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return kinds.get(type(value), "object")


def _arrow_type(spec: str) -> pa.DataType:
    if spec.startswith("list<") and spec.endswith(">"):
        return pa.list_(_arrow_type(spec[5:-1]))
    if spec.startswith("fixed_size_list<") and spec.endswith(">"):
        item, size = spec[16:-1].rsplit(",", 1)
        return pa.list_(_arrow_type(item.strip()), int(size))
    return pa.type_for_alias(spec)


@functools.cache
def load(table: str) -> TableSchema:
    """The definition of `table` from `schemas/<table>.json`."""
    try:
        text = importlib.resources.files("ghframes.schemas").joinpath(f"{table}.json").read_text()
    except FileNotFoundError:
        raise GhframesError(f"schemas/{table}.json: no such table definition") from None
    doc = json.loads(text)
    fields = [
        pa.field(c["name"], _arrow_type(c["type"]), nullable=c.get("nullable", True))
        for c in doc["columns"]
    ]
    metadata = {TABLE_KEY: table.encode(), VERSION_KEY: doc["version"].encode()}
    return TableSchema(table, doc["version"], pa.schema(fields, metadata=metadata), doc)
