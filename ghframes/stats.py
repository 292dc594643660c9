"""`ghframes stats DATA`: what a dataset holds, stage by stage, and what was skipped and why."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Mapping

from ghframes.errors import GhframesError
from ghframes.store import schema, shards
from ghframes.text import shown


def edits_stats(data: str) -> dict:
    """Repositories, commits, changes, bytes and skip counts from DATA/edits/_manifest.json.

    `stale` maps each repository that failed its last crawl but keeps an earlier run's rows
    (counted in the totals) to the number of commits those rows cover.
    """
    fs, root = shards.filesystem(data)
    manifest = shards.read_manifest(fs, f"{root}/edits", schema.load("edits"))
    if manifest is None:
        raise GhframesError(
            f"{data}: no edits manifest (run `ghframes crawl … --out {data}` first)"
        )
    repos = manifest["repos"].values()
    by_status = Counter(e["status"] for e in repos)
    skipped = Counter()
    for e in repos:
        skipped.update(e.get("skipped", {}))
    # A `stale` repository failed its last crawl but keeps the rows an earlier run mined.
    ok = [e for e in repos if e["status"] == "ok" or e.get("stale")]
    return {
        "repositories": len(manifest["repos"]),
        "by_status": dict(sorted(by_status.items())),
        "commits": sum(e["commits"] for e in ok),
        "changes": sum(e["changes"] for e in ok),
        "shards": sum(len(e["shards"]) for e in ok),
        "bytes": sum(e["bytes"] for e in ok),
        "skipped": dict(sorted(skipped.items())),
        "failed": {e["source"]: e["error"] for e in repos if e["status"] == "failed"},
        "stale": {e["source"]: e["commits"] for e in repos if e.get("stale")},
    }


def collect(data: str) -> dict:
    out = {"edits": edits_stats(data)}
    fs, root = shards.filesystem(data)
    if fs.get_file_info(f"{root}/frames").type != shards.pafs.FileType.NotFound:
        from ghframes.store.frames import frames_stats

        out["frames"] = frames_stats(data)
    return out


def _lines(section: str, stats: dict) -> list[str]:
    lines = [section]
    for key, value in stats.items():
        if isinstance(value, dict):
            if not value:
                continue
            lines.append(f"  {key}:")
            lines += [f"    {k:<24} {v}" for k, v in value.items()]
        else:
            lines.append(
                f"  {key:<26} {value:,}" if isinstance(value, int) else f"  {key:<26} {value}"
            )
    return lines


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    stats = collect(args.data)
    if args.json:
        print(json.dumps(stats, indent=1, sort_keys=True))
    else:
        for section, values in stats.items():
            # Sources and errors come from repositories and servers; JSON escapes by itself.
            print("\n".join(shown(line) for line in _lines(section, values)))
    return 0
