"""Render pipeline on Ray: plan each repository into sessions, then one task per session.

A plan task reads a repository's edit shards, counts each commit's frames without drawing
them, groups commits into sessions and hashes each session's own commits' edit rows (its input
identity). A render task draws one session and publishes its shard atomically under a name
derived from that identity; if the shard is already there (an earlier run, or a session an
incremental crawl did not change), it only reads its footer. The manifest is written last; a
run that finds every repository's edits and options as the previous manifest records them
starts no Ray and writes nothing. So a run killed at any moment and started again finishes
with every session exactly once, and two runs over the same input write byte-identical shards.

A repository that fails to render keeps the sessions the previous manifest listed for it,
marked `stale`. After the manifest, shards it does not list (earlier renders under other
options, renderer versions or edits) are deleted, so re-rendering does not grow DATA/frames.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

import pyarrow.compute as pc
import pyarrow.fs as pafs
import ray

from ghframes.errors import GhframesError
from ghframes.pipelines.cluster import init_ray
from ghframes.render.commits import group_into_sessions, plan_commit
from ghframes.render.session import RENDERER_VERSION, RenderOptions, render_session
from ghframes.store import schema, shards
from ghframes.store.edits import EDITS_DIR, commits_of, read_edits
from ghframes.store.frames import FRAMES_DIR, read_session_metadata, write_session
from ghframes.store.sessions import SESSIONS, write_sessions_table

log = logging.getLogger(__name__)


def commit_digest(rows: list[dict]) -> str:
    """sha256 of one commit's edit rows (commits_of), every field, canonically: what its frames
    are drawn from."""
    h = hashlib.sha256()
    for row in rows:
        for name in sorted(row):
            value = row[name]
            data = value if isinstance(value, bytes) else json.dumps(value, default=str).encode()
            h.update(f"{name}:{type(value).__name__}:{len(data)}:".encode())
            h.update(data)
        h.update(b"\n")
    return h.hexdigest()


def session_names(
    key: str, digest: str, options: RenderOptions, first: int, last: int
) -> tuple[str, str]:
    """(session id, shard path relative to DATA/frames): from the input identity only, `digest`
    being that of the session's own commits (plan_repo: a hash of their `commit_digest`s)."""
    slug = shards.safe_name(key)
    identity = json.dumps(
        [digest, options.as_dict(), RENDERER_VERSION, first, last], sort_keys=True
    ).encode()
    return (
        f"{slug}-c{first:06d}",
        f"{slug}/c{first:06d}-{hashlib.sha256(identity).hexdigest()[:16]}.parquet",
    )


def plan_repo(data: str, key: str, entry: dict, options: RenderOptions) -> dict:
    """Split one repository into sessions: [{id, shard, first, last, num_frames, digest}].

    A session's name hashes its own commits' edit rows (and the options, the renderer version):
    after an incremental crawl, the sessions whose commits did not change keep their names and
    shards, and only the ones that gained commits are drawn again."""
    fs, root = shards.filesystem(data)
    table, _ = read_edits(fs, f"{root}/{EDITS_DIR}", entry["shards"], key)
    commits = commits_of(table)
    counts = [plan_commit(rows, options).num_actions for rows in commits]
    digests = [commit_digest(rows) for rows in commits]
    sessions = []
    for start, end in group_into_sessions(counts, options.max_frames_per_session):
        first, last = commits[start][0]["commit_index"], commits[end - 1][0]["commit_index"]
        digest = hashlib.sha256(json.dumps([key, *digests[start:end]]).encode()).hexdigest()
        session_id, shard = session_names(key, digest, options, first, last)
        sessions.append(
            {
                "id": session_id,
                "shard": shard,
                "first": first,
                "last": last,
                "num_frames": 1 + sum(counts[start:end]),
                "digest": digest,
            }
        )
    return {"key": key, "repo": entry.get("repo", key), "sessions": sessions}


def edits_fingerprint(fs, edits_root: str, entry: dict) -> list:
    """What a repository's frames depend on in DATA/edits, cheaply: its shards' names, sizes and
    modification times (a re-run whose fingerprints and options match has nothing to draw)."""
    paths = [f"{edits_root}/{rel}" for rel in entry.get("shards", [])]
    infos = fs.get_file_info(paths) if paths else []
    return [[rel, i.size, i.mtime_ns] for rel, i in zip(entry["shards"], infos, strict=True)]


def render_one(data: str, key: str, entry: dict, spec: dict, options: RenderOptions) -> dict:
    """Draw one session and publish its shard, unless an earlier run did; return its summary."""
    fs, root = shards.filesystem(data)
    path = f"{root}/{FRAMES_DIR}/{spec['shard']}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        table, _ = read_edits(fs, f"{root}/{EDITS_DIR}", entry["shards"], key)
        index = table["commit_index"]
        keep = pc.and_(pc.greater_equal(index, spec["first"]), pc.less_equal(index, spec["last"]))
        commits = commits_of(table.filter(keep))
        chunks, metadata = render_session(entry.get("repo", key), commits, options)
        metadata.update(key=key, edits_digest=spec["digest"])
        write_session(fs, path, spec["id"], chunks, metadata)
    metadata = read_session_metadata(fs, path)
    return {
        "id": spec["id"],
        "key": key,
        "repo": metadata["repo"],
        "root": entry.get("root"),  # the history's first commit: its identity wherever crawled
        "shard": spec["shard"],
        "first_commit_index": metadata["first_commit_index"],
        "last_commit_index": metadata["last_commit_index"],
        "num_commits": metadata["num_commits"],
        "num_frames": metadata["num_frames"],
        "num_changes": metadata["num_changes"],
        "bytes": fs.get_file_info(path).size,
        "skipped": metadata["skipped"],
        "oversized": metadata["oversized"],
        "unknown_sequences": metadata["unknown_sequences"],
    }


_plan_task = ray.remote(num_cpus=1, max_retries=2)(plan_repo)
_render_task = ray.remote(num_cpus=1, max_retries=2)(render_one)


def _error_line(exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) and exc.cause else exc
    return f"{type(cause).__name__}: {cause}".splitlines()[0]


def _previous_manifest(fs, frames_root: str) -> dict:
    """The manifest of the previous run, or {} if it has none readable."""
    try:
        where, previous = shards.read_named_json(fs, frames_root, shards.MANIFEST)
    except GhframesError as exc:
        log.warning("%s; no earlier sessions can be kept for repositories that fail", exc)
        return {}
    if not previous:
        return {}
    try:
        schema.load("frames").check_manifest(previous, where)
    except GhframesError as exc:
        log.warning("%s; no earlier sessions kept", exc)
        return {}
    return previous


def _up_to_date(fs, frames_root: str, previous: dict, options, fingerprints: dict) -> dict:
    """The repositories whose previous render stands: same options and renderer version, the
    same edits (fingerprints), rendered whole (ok, not stale), every shard still there."""
    if (
        previous.get("options") != options.as_dict()
        or previous.get("renderer_version") != RENDERER_VERSION
    ):
        return {}
    on_disk = {info.path for info in _files(fs, frames_root)}
    if not {f"{frames_root}/{shards.MANIFEST}", f"{frames_root}/{SESSIONS}"} <= on_disk:
        return {}  # written under former names, or without the sessions table: write them
    sessions = previous.get("sessions", {})
    fresh = {}
    for key, status in previous.get("repos", {}).items():
        ids = status.get("sessions", [])
        if (
            key in fingerprints
            and status.get("status") == "ok"
            and not status.get("stale")
            and status.get("edits") == fingerprints[key]
            and all(sid in sessions for sid in ids)
            and all(f"{frames_root}/{sessions[sid]['shard']}" in on_disk for sid in ids)
        ):
            fresh[key] = status
    return fresh


def _keep_earlier(fs, frames_root: str, previous: dict[str, dict], key: str) -> dict[str, dict]:
    """The sessions of `key` the previous manifest listed whose shards are still on disk.

    A repository that fails now (a damaged edits shard, a task that died) records its error,
    but frames an earlier run already published stay readable, as the crawl keeps mined rows.
    """
    earlier = {}
    for sid, info in sorted(previous.items()):
        if info.get("key") != key:
            continue
        path = f"{frames_root}/{info['shard']}"
        if fs.get_file_info(path).type == pafs.FileType.File:
            earlier[sid] = info
        else:
            log.warning("%s: session %s of the previous render is gone, not kept", path, sid)
    return earlier


def _files(fs, frames_root: str) -> list[pafs.FileInfo]:
    """Every file under `frames_root` (none when it does not exist yet)."""
    selector = pafs.FileSelector(frames_root, recursive=True, allow_not_found=True)
    return [info for info in fs.get_file_info(selector) if info.type == pafs.FileType.File]


def _unreferenced_shards(fs, frames_root: str, keep: set[str]) -> list[pafs.FileInfo]:
    """Shards under `frames_root` whose path relative to it is not in `keep`."""
    return [
        info
        for info in _files(fs, frames_root)
        if info.base_name.endswith(".parquet")
        and not info.base_name.startswith(("_", "."))  # the sessions table, temporaries
        and info.path.startswith(f"{frames_root}/")
        and info.path[len(frames_root) + 1 :] not in keep
    ]


def _remove(fs, frames_root: str, infos: list[pafs.FileInfo]) -> None:
    """Delete `infos`, then the folders under `frames_root` that this leaves empty."""
    folders = set()
    for info in infos:
        try:
            fs.delete_file(info.path)
        except FileNotFoundError:
            pass  # already gone, which is all that was asked
        except OSError as exc:
            raise GhframesError(f"{info.path}: cannot remove unreferenced shard ({exc})") from None
        folders.add(info.path.rsplit("/", 1)[0])
    for folder in sorted(folders, key=len, reverse=True):  # deepest first
        while folder.startswith(f"{frames_root}/"):
            if fs.get_file_info(folder).type != pafs.FileType.Directory or fs.get_file_info(
                pafs.FileSelector(folder)
            ):
                break
            fs.delete_dir(folder)
            folder = folder.rsplit("/", 1)[0]


def render_dataset(
    data: str,
    options: RenderOptions,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    ray_timeout: float = 30.0,
    announce: bool = False,
) -> dict:
    """Render every repository of DATA/edits into DATA/frames; return the manifest written.

    `on_progress(frames_done, frames_known)` is called as sessions finish; `ray_timeout` is
    how long to try reaching `ray_address`; `announce`: say "starting Ray …" on stderr. After the manifest,
    the shards it does not list are deleted; its `removed` says how many and their bytes.
    """
    fs, root = shards.filesystem(data)
    # Checked as stats checks it (table, version, shape) before any task starts.
    edits_manifest = shards.read_manifest(fs, f"{root}/{EDITS_DIR}", schema.load("edits"))
    if edits_manifest is None:
        raise GhframesError(f"{data}: no edits (run `ghframes crawl ... --out {data}` first)")
    frames_root = f"{root}/{FRAMES_DIR}"
    for _ in shards.remove_stale_temporaries(fs, frames_root):
        pass
    last = _previous_manifest(fs, frames_root)
    previous = last.get("sessions", {})
    repos = {
        key: entry
        for key, entry in sorted(edits_manifest.get("repos", {}).items())
        # `ok`, or `failed` but still listing what an earlier crawl mined (`stale`)
        if entry.get("shards")
    }
    fingerprints = {
        key: edits_fingerprint(fs, f"{root}/{EDITS_DIR}", entry) for key, entry in repos.items()
    }
    fresh = _up_to_date(fs, frames_root, last, options, fingerprints)
    repo_status: dict[str, dict] = {key: dict(status) for key, status in fresh.items()}
    sessions = {sid: previous[sid] for status in fresh.values() for sid in status["sessions"]}
    done_frames = known_frames = sum(s["num_frames"] for s in sessions.values())
    if len(fresh) == len(repos) and set(last.get("repos", {})) == set(repos):
        # Nothing to draw, nothing to remove: no Ray, and the manifest stays as it is.
        return dict(last, removed={"shards": 0, "bytes": 0}, up_to_date=True)
    if on_progress is not None and sessions:
        on_progress(done_frames, known_frames)
    init_ray(
        ray_address, num_cpus, ray_timeout, log_to_driver=False, log_dir=data, announce=announce
    )

    pending: dict = {}
    for key, entry in repos.items():
        if key not in fresh:
            pending[_plan_task.remote(data, key, entry, options)] = ("plan", key, None)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        ref = ready[0]
        kind, key, spec = pending.pop(ref)
        try:
            result = ray.get(ref)
        except (ray.exceptions.RayError, GhframesError) as exc:
            status = repo_status.setdefault(
                key, {"repo": repos[key].get("repo", key), "status": "failed", "sessions": []}
            )
            status["status"] = "failed"
            status.setdefault("error", _error_line(exc))
            continue
        if kind == "plan":
            repo_status.setdefault(
                key,
                {
                    "repo": result["repo"],
                    "status": "ok",
                    "sessions": [],
                    "edits": fingerprints[key],
                },
            )
            for s in result["sessions"]:
                repo_status[key]["sessions"].append(s["id"])
                known_frames += s["num_frames"]
                ref = _render_task.remote(data, key, repos[key], s, options)
                pending[ref] = ("render", key, s)
        else:
            sessions[result["id"]] = result
            done_frames += result["num_frames"]
        if on_progress is not None:
            on_progress(done_frames, known_frames)
    for key, entry in edits_manifest.get("repos", {}).items():
        # The crawl failed with nothing mined: what an earlier render made of it is kept.
        if (
            key not in repos
            and entry.get("status") == "failed"
            and _keep_earlier(fs, frames_root, previous, key)
        ):
            error = f"no edits to render (crawl: {entry.get('error')})"
            repo = entry.get("repo", key)
            repo_status[key] = {"repo": repo, "status": "failed", "sessions": [], "error": error}
    # Shards a failed repository did finish this run stay on disk, unlisted: its next run
    # resumes from them instead of drawing them again.
    unfinished: set[str] = set()
    for key, status in repo_status.items():
        if status["status"] == "ok" and any(s not in sessions for s in status["sessions"]):
            status["status"] = "failed"
        if status["status"] != "failed":
            continue
        status.pop("edits", None)  # what it was rendered from is not what failed now
        earlier = _keep_earlier(fs, frames_root, previous, key)
        if earlier:
            # The earlier render, whole, rather than part of this one beside part of that.
            for sid in [sid for sid, s in sessions.items() if s["key"] == key]:
                unfinished.add(sessions.pop(sid)["shard"])
            sessions.update(earlier)
            status.update(sessions=list(earlier), stale=True)
    for status in repo_status.values():
        status["sessions"].sort()
    keep = {s["shard"] for s in sessions.values()}
    unreferenced = _unreferenced_shards(fs, frames_root, keep | unfinished)
    manifest = {
        "table": "frames",
        "version": schema.load("frames").version,
        "renderer_version": RENDERER_VERSION,
        "options": options.as_dict(),
        "repos": dict(sorted(repo_status.items())),
        "sessions": dict(sorted(sessions.items())),
        "removed": {"shards": len(unreferenced), "bytes": sum(i.size for i in unreferenced)},
    }
    write_sessions_table(fs, frames_root, manifest)
    shards.write_manifest(fs, frames_root, manifest)
    # Only now: until the new manifest is in place, the previous one may still list them.
    _remove(fs, frames_root, unreferenced)
    if unreferenced:
        log.info(
            "%s: removed %d unreferenced shards (%d bytes)",
            frames_root,
            len(unreferenced),
            manifest["removed"]["bytes"],
        )
    return manifest
