"""Many-repositories benchmark: the cost of the driver, which holds one manifest entry per
repository and per session, as the number of repositories grows.

`bench_scale()` generates `repos` small git repositories (3 commits each, distinct roots),
crawls and renders them through the embedded Ray in a fresh interpreter (so that its peak
resident memory is the driver's alone: Ray's workers are other processes), and reports
repositories/s, frames/s and that peak. Then the same crawl and render again, into a DATA whose
manifests already list `entries` - `repos` other repositories (`add_other_repositories`): the
difference is the driver's cost per manifest entry, in time and memory. Last it writes and reads
the manifests and the sessions table of `entries` synthetic repositories (one session each) in
the same way a render's driver does, and reports their bytes and time per repository: what
100,000 or 1,000,000 repositories would cost follows (README, "Performance").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pygit2

from ghframes.bench.verify import _PEAK

_DRIVER = (
    _PEAK
    + """
import json, sys, time
from ghframes import cli
argv = json.loads(sys.argv[1])
start = time.perf_counter()
code = cli.main(argv, env={})
print(json.dumps({"code": code, "seconds": time.perf_counter() - start, "peak_kib": peak_kib()}))
"""
)
_BASELINE = _PEAK + "from ghframes import cli\nimport ray\nprint(peak_kib())\n"


def make_repositories(root: Path, count: int, commits: int = 3) -> list[str]:
    """`count` repositories of `commits` commits each under `root`, every root commit distinct
    (no two are forks of one another)."""
    paths = []
    for k in range(count):
        path = root / f"project{k:05d}"
        repo = pygit2.init_repository(str(path), initial_head="main")
        parents: list = []
        for c in range(commits):
            text = "".join(f"value_{k}_{i} = {i * c}\n" for i in range(5 + c))
            blob = repo.create_blob(f"# project {k}\n{text}".encode())
            builder = repo.TreeBuilder()
            builder.insert("settings.py", blob, pygit2.enums.FileMode.BLOB)
            when = pygit2.Signature("Bench", "bench@example.org", 1_700_000_000 + 60 * c, 0)
            oid = repo.create_commit(
                "refs/heads/main", when, when, f"step {c}\n", builder.write(), parents
            )
            parents = [oid]
        paths.append(str(path))
    return paths


def _driver(argv: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(argv)], capture_output=True, text=True
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"bench scale: {argv[0]} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(f"bench scale: {argv[0]} exited {result['code']}: {done.stderr[-2000:]}")
    return result


def _link(source: Path, target: Path) -> None:
    """`target` as a hard link to `source` (a copy keeping its times where links fail)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _commit_id(*parts: str) -> str:
    """A made-up commit id (40 hex digits) of `parts`."""
    return hashlib.sha1(":".join(parts).encode()).hexdigest()


def add_other_repositories(template: Path, data: Path, count: int) -> None:
    """Write into `data` the manifests and sessions table of `count` repositories that are not
    among `template`'s, modelled on them: the entries of a DATA crawled and rendered from
    `template`'s repositories in turn, under other keys, names and roots, their shards hard
    links to `template`'s. A crawl and a render into `data` keep them as they are (their
    shards and fingerprints are in place), so they cost the drivers only their entries."""
    from ghframes.store import shards
    from ghframes.store.sessions import write_sessions_table

    fs, root = shards.filesystem(str(data))
    edits = json.loads((template / "edits" / shards.MANIFEST).read_text())
    frames = json.loads((template / "frames" / shards.MANIFEST).read_text())
    models = sorted(edits["repos"].items())
    repos, frame_repos, sessions = {}, {}, {}
    for k in range(count):
        model_key, model = models[k % len(models)]
        name = f"other{k:05d}"
        key = shards.safe_name(name)
        entry = model | {
            "key": key,
            "repo": f"local-{_commit_id('where', name)[:8]}/{name}",
            "source": f"/elsewhere/{name}",
            "root": _commit_id("root", name),  # distinct: no other repository's duplicate
            "head": _commit_id("head", name),
            "shards": [f"{key}/{rel.split('/', 1)[1]}" for rel in model["shards"]],
        }
        fingerprint = []
        for old, new in zip(model["shards"], entry["shards"], strict=True):
            _link(template / "edits" / old, data / "edits" / new)
            info = (data / "edits" / new).stat()
            fingerprint.append([new, info.st_size, info.st_mtime_ns])
        repos[key] = entry
        status = frames["repos"][model_key]
        frame_repos[key] = status | {"repo": entry["repo"], "sessions": [], "edits": fingerprint}
        slug = shards.safe_name(key)
        for old_id in status["sessions"]:
            session = frames["sessions"][old_id]
            shard = f"{slug}/{session['shard'].split('/', 1)[1]}"
            new_id = f"{slug}-c{session['first_commit_index']:06d}"
            _link(template / "frames" / session["shard"], data / "frames" / shard)
            sessions[new_id] = session | {
                "id": new_id, "key": key, "repo": entry["repo"], "root": entry["root"],
                "shard": shard,
            }  # fmt: skip
            frame_repos[key]["sessions"].append(new_id)
    shards.write_manifest(fs, f"{root}/edits", edits | {"repos": repos})
    manifest = frames | {"repos": frame_repos, "sessions": dict(sorted(sessions.items()))}
    write_sessions_table(fs, f"{root}/frames", manifest)
    shards.write_manifest(fs, f"{root}/frames", manifest)


def _manifest_cost(entries: int) -> dict:
    """Bytes and seconds of the manifests and the sessions table of `entries` repositories of
    one session each, written and read as the pipelines do."""
    from ghframes.store import shards
    from ghframes.store.sessions import write_sessions_table

    with tempfile.TemporaryDirectory(prefix="ghframes-bench-scale-") as tmp:
        fs, root = shards.filesystem(tmp)
        sessions, repos = {}, {}
        for k in range(entries):
            key, sid = f"github.com/owner{k}/project{k}", f"owner{k}_project{k}-0a1b2c3d4e-c000000"
            repos[key] = {
                "repo": key,
                "status": "ok",
                "sessions": [sid],
                "edits": [[f"{key}/0-x.parquet", 123456, 1796000000000000000]],
            }
            sessions[sid] = {
                "key": key, "repo": key, "shard": f"{key}/c000000-0123456789abcdef.parquet",
                "first_commit_index": 0, "last_commit_index": 41, "num_commits": 42,
                "num_frames": 31_000, "num_changes": 57, "bytes": 600_000,
                "skipped": {"lock_file": 1}, "oversized": False, "unknown_sequences": 0,
            }  # fmt: skip
        manifest = {"table": "frames", "version": "2.0", "repos": repos, "sessions": sessions}
        start = time.perf_counter()
        write_sessions_table(fs, root, manifest)
        shards.write_manifest(fs, root, manifest)
        written = time.perf_counter() - start
        start = time.perf_counter()
        json.loads(Path(tmp, shards.MANIFEST).read_text())
        read = time.perf_counter() - start
        return {
            "manifest_bytes": Path(tmp, shards.MANIFEST).stat().st_size,
            "sessions_bytes": Path(tmp, "_sessions.parquet").stat().st_size,
            "write_s": written,
            "read_s": read,
        }


def _crawl_and_render(paths: list[str], data: Path) -> dict:
    """Crawl `paths` into `data` and render it, each in a fresh driver; their times and peaks."""
    crawl = _driver(["crawl", *paths, "--out", str(data), "--no-progress"])
    render = _driver(["render", str(data), "--no-progress"])
    manifest = json.loads(Path(data, "frames", "_manifest.json").read_text())
    if len(manifest["repos"]) < len(paths):
        raise RuntimeError(f"bench scale: {data}: {len(manifest['repos'])} repositories rendered")
    return {"crawl": crawl, "render": render, "manifest": manifest}


def bench_scale(repos: int = 200, entries: int = 2000) -> list[dict]:
    """The many-repositories rows of `make bench` (module docstring)."""
    with tempfile.TemporaryDirectory(prefix="ghframes-bench-scale-") as tmp:
        paths = make_repositories(Path(tmp) / "repos", repos)
        baseline = int(
            subprocess.run([sys.executable, "-c", _BASELINE], capture_output=True, text=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        alone = _crawl_and_render(paths, Path(tmp) / "data")
        sessions = alone["manifest"]["sessions"]
        num_frames = sum(s["num_frames"] for s in sessions.values())
        start = time.perf_counter()
        add_other_repositories(Path(tmp) / "data", Path(tmp) / "among", entries - repos)
        setup_s = time.perf_counter() - start
        among = _crawl_and_render(paths, Path(tmp) / "among")
        listed = len(among["manifest"]["repos"])
        if listed != entries or any(
            r["status"] != "ok" or r.get("stale") for r in among["manifest"]["repos"].values()
        ):
            raise RuntimeError(f"bench scale: {entries} repositories ok expected, got {listed}")
    crawl, render = alone["crawl"], alone["render"]
    cost = _manifest_cost(entries)
    peak = max(crawl["peak_kib"], render["peak_kib"])
    others = entries - repos
    among_rows = []
    for stage in ("crawl", "render"):
        seconds, peak_kib = among[stage]["seconds"], among[stage]["peak_kib"]
        extra_ms = 1e3 * (seconds - alone[stage]["seconds"]) / others
        extra_kib = (peak_kib - alone[stage]["peak_kib"]) / others
        among_rows += [
            {"name": f"scale.{stage}_repos_per_s.{repos}_among_{entries}", "value": round(repos / seconds, 1), "unit": f"repositories/s (the same {repos}, into DATA listing {listed:,} repositories)"},
            {"name": f"scale.{stage}_driver_peak_mib.{repos}_among_{entries}", "value": round(peak_kib / 1024, 1), "unit": f"MiB resident ({alone[stage]['peak_kib'] / 1024:.1f} beside {repos} entries)"},
            {"name": f"scale.{stage}_driver_ms_per_entry.{entries}", "value": round(extra_ms, 2), "unit": f"ms more per other repository listed ({others:,} added)"},
            {"name": f"scale.{stage}_driver_kib_per_entry.{entries}", "value": round(extra_kib, 1), "unit": "KiB more peak per other repository listed"},
        ]  # fmt: skip
    return [
        {"name": f"scale.crawl_repos_per_s.{repos}", "value": round(repos / crawl["seconds"], 1), "unit": f"repositories/s ({repos} repositories of 3 commits, embedded Ray, start-up included)"},
        {"name": f"scale.render_repos_per_s.{repos}", "value": round(repos / render["seconds"], 1), "unit": "repositories/s"},
        {"name": f"scale.render_frames_per_s.{repos}", "value": round(num_frames / render["seconds"]), "unit": f"frames/s ({num_frames:,} frames, 2 cores)"},
        {"name": f"scale.driver_peak_mib.{repos}", "value": round(peak / 1024, 1), "unit": f"MiB resident (an interpreter with ghframes and Ray imported: {baseline / 1024:.0f})"},
        *among_rows,
        {"name": f"scale.other_entries_setup_s.{entries}", "value": round(setup_s, 2), "unit": f"s to write the {others:,} other repositories' entries (hard-linked shards)"},
        {"name": f"scale.manifest_bytes_per_repo.{entries}", "value": round(cost["manifest_bytes"] / entries), "unit": "bytes per repository (one session each), _manifest.json"},
        {"name": f"scale.sessions_table_bytes_per_repo.{entries}", "value": round(cost["sessions_bytes"] / entries, 1), "unit": "bytes per repository, _sessions.parquet"},
        {"name": f"scale.manifest_write_us_per_repo.{entries}", "value": round(1e6 * cost["write_s"] / entries, 1), "unit": "us per repository (sessions table + manifest)"},
        {"name": f"scale.manifest_read_us_per_repo.{entries}", "value": round(1e6 * cost["read_s"] / entries, 1), "unit": "us per repository (json.loads)"},
    ]  # fmt: skip
