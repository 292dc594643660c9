"""`ghframes stats DATA`: what a dataset holds, stage by stage, and what was skipped and why;
with `--actions`, how human its keystrokes are (the figures of ghframes/keystats.py)."""

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


def _ratio(value: float | None, percent: bool = False, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2%}" if percent else f"{value:.{digits}f}"


def _times(figure: dict | None) -> str:
    if figure is None:
        return "n/a"
    return f"median {figure['median']}, p95 {figure['p95']}, mean {figure['mean']:.1f}"


def action_lines(figures: dict) -> list[str]:
    """The figures of keystats.py as an aligned table: short name, value, human reference."""
    ref = figures["reference"]
    rows = [(f"share.{name}", _ratio(v, percent=True), "") for name, v in figures["share"].items()]
    rows += [
        ("kspc", _ratio(figures["kspc"]), f"{ref['kspc']}"),
        ("kspc_own_text", _ratio(figures["kspc_own_text"]), f"{ref['kspc']}"),
        (
            "typo_rate",
            _ratio(figures["typo_rate"], percent=True),
            f"{ref['uncorrected_error_rate']:.2%} left uncorrected",
        ),
    ]
    run = figures["longest_run"]
    if run is None:
        rows.append(("longest_run", "n/a", ""))
    else:
        rows.append(("longest_run", f"{run['length']:,} x {run['key']!r}", ""))
        rows.append(("longest_run.at", f"session {run['session']}, frame {run['frame']:,}", ""))
    rows += [
        ("enter_opens_line", _ratio(figures["enter_opens_line"], percent=True), ""),
        ("indent_keys_per_line", _ratio(figures["indent_keys_per_line"], digits=2), ""),
    ]
    times, iki = figures["inter_key_ms"], f"{ref['inter_key_ms_mean']} mean, every key"
    if times is None:
        rows += [("inter_key_ms", "no times recorded", iki)]
        rows += [("wpm", "no times recorded", f"{ref['wpm']}")]
    else:
        rows += [("inter_key_ms.all", _times(times["all"]), iki)]
        rows += [("inter_key_ms.printable", _times(times["printable"]), "")]
        rows += [("wpm", _ratio(times["wpm"], digits=1), f"{ref['wpm']}")]
    rows += [(f"totals.{k}", f"{v:,}", "") for k, v in figures["totals"].items()]
    name_width = max(len(r[0]) for r in rows)
    value_width = max(len(value) for _, value, reference in rows if reference)
    header = ("figure", "value", "human typing")
    lines = ["actions (definitions: ghframes/keystats.py)"]
    for name, value, reference in [header, *rows]:
        lines.append(f"  {name:<{name_width}}  {value:<{value_width}}  {reference}".rstrip())
    return [*lines, f"  human typing: {ref['source']}"]


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    stats = collect(args.data)
    if args.actions:
        from ghframes.keystats import dataset_figures

        stats["actions"] = dataset_figures(args.data)  # before any output: errors come alone
    if args.json:
        print(json.dumps(stats, indent=1, sort_keys=True))
    else:
        for section, values in stats.items():
            # Sources, errors, keys and session ids come from data; JSON escapes by itself.
            lines = action_lines(values) if section == "actions" else _lines(section, values)
            print("\n".join(shown(line) for line in lines))
    return 0
