"""The crawl stage as a Ray program: one task per repository, on an embedded Ray or a cluster.

First the driver finds, cheaply, the sources whose default branch has not moved since the
previous crawl (a local one read in place, a remote one's server asked for its heads, nothing
fetched); those keep their entries, and a server that does not answer is its source's failure.
Ray starts only for the others, if any. Two rounds of tasks. `resolve` opens each repository (cloning or fetching its mirror) and finds
the head and first-parent root commit; repositories sharing a root (forks, mirrors) are then
mined once, the one an earlier run mined winning, else the first in input order. A task that
dies of something unforeseen fails only its repository. `mine_repository` mines only commits the
repository's state file does not cover yet, writes its shards, then its state file; the driver
writes `DATA/edits/_manifest.json` last. A run killed anywhere and re-run ends with every commit
mined exactly once, and a re-run retries only repositories that failed. A repository that fails
after an earlier run mined it stays listed with those shards, marked `stale`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pygit2
import ray

from ghframes.crawl import history
from ghframes.crawl.sources import Source, default_head, open_repository, remote_head
from ghframes.errors import GhframesError
from ghframes.pipelines.cluster import init_ray
from ghframes.progress import Progress
from ghframes.store import schema, shards

log = logging.getLogger(__name__)

EDITS = "edits"


@dataclass(frozen=True)
class CrawlOptions:
    cache_dir: str
    max_file_bytes: int = 1 << 20
    # A shard is closed at the first commit boundary after this much text.
    shard_text_bytes: int = 128 << 20


def _edits_dir(data: str) -> tuple:
    fs, root = shards.filesystem(data)
    return fs, f"{root}/{EDITS}"


def resolve(source: Source, options: CrawlOptions, token: str | None) -> dict:
    """Open (clone or fetch) `source`; its head and first-parent root commit ids, and the
    number of first-parent commits (the progress bar's share of this repository)."""
    try:
        repo = open_repository(source, options.cache_dir, fetch=True, token=token)
        head = default_head(repo, source)
        walker = repo.walk(head.id)
        walker.simplify_first_parent()
        root, commits = None, 0
        for root in walker:  # noqa: B007 - the last commit walked is the root
            commits += 1
        return {"head": str(head.id), "root": str(root.id), "commits": commits}
    except GhframesError as exc:
        return {"error": str(exc)}
    except (pygit2.GitError, OSError, KeyError, ValueError) as exc:
        return {"error": f"{source.spec}: {type(exc).__name__}: {exc}"}


def _entry(source: Source, **fields) -> dict:
    entry = {
        "key": source.key,
        "repo": source.repo,
        "source": source.spec,
        "kind": source.kind,
        "status": "failed",
        "error": None,
        "root": None,
        "head": None,
        "commits": 0,
        "changes": 0,
        "bytes": 0,
        "shards": [],
        "skipped": {},
        "metadata": source.metadata,
    }
    entry.update(fields)
    return entry


def mine_repository(
    source: Source,
    data: str,
    head: str,
    root: str,
    options: CrawlOptions,
    token: str | None,
    on_commits: Callable[[int], None] | None = None,
) -> dict:
    """Mine `source` up to `head` into shards under DATA/edits/<key>/; return its manifest entry.

    `on_commits(n)` hears of commits as they are mined (commits mined by earlier runs count
    as done at once)."""
    fs, edits = _edits_dir(data)
    state_folder = f"{edits}/{source.key}"
    edit_schema = schema.load(EDITS)
    try:
        repo = open_repository(source, options.cache_dir, fetch=False, token=token)
        state_path, state = shards.read_named_json(fs, state_folder, shards.STATE)
        commits, first_index, earlier_changes, kept, skipped = None, 0, 0, [], Counter()
        if (
            state
            and state.get("status") == "ok"
            and state.get("root") == root
            # Rows mined under another size limit or identity (a local repository's before it
            # carried a hash of its location) would not match a fresh crawl's.
            and state.get("max_file_bytes") == options.max_file_bytes
            and state.get("repo") == source.repo
        ):
            if state["head"] == head:
                if state_path != f"{state_folder}/{shards.STATE}":  # ghframes 0.1.0's name
                    shards.write_named_json(fs, state_folder, shards.STATE, state)
                return state | {"metadata": source.metadata or state.get("metadata", {})}
            commits = history.commits_since(
                repo, pygit2.Oid(hex=state["head"]), pygit2.Oid(hex=head)
            )
            if commits is None:
                log.warning("%s: history was rewritten; mining it again from the root", source.spec)
            else:
                first_index = state["commits"]
                earlier_changes = state["changes"]
                if on_commits is not None:
                    on_commits(first_index)
                kept = list(state["shards"])
                skipped.update(state["skipped"])
        if commits is None:
            commits = history.first_parent_chain(repo, pygit2.Oid(hex=head))
        stats = history.MiningStats(skipped=skipped)
        for batch in history.mine(
            repo,
            source.repo,
            commits,
            first_index,
            stats,
            max_file_bytes=options.max_file_bytes,
            batch_bytes=options.shard_text_bytes,
            on_commits=on_commits,
            branch=history.head_branch(repo, source.default_branch),
        ):
            if batch.num_rows == 0:
                continue
            # Named by position and content identity: a re-run writes the same name and bytes.
            name = f"{source.key}/{batch.first_index:08d}-{batch.last_commit[:12]}.parquet"
            table = pa.table(batch.columns, schema=edit_schema.arrow)
            shards.write_table(fs, f"{edits}/{name}", table, edit_schema, row_group_size=256)
            kept.append(name)
        entry = _entry(
            source,
            status="ok",
            root=root,
            head=head,
            commits=first_index + stats.commits,
            changes=earlier_changes + stats.changes,
            bytes=sum(fs.get_file_info(f"{edits}/{name}").size for name in kept),
            shards=kept,
            skipped=dict(sorted(stats.skipped.items())),
            max_file_bytes=options.max_file_bytes,
        )
        shards.write_named_json(fs, state_folder, shards.STATE, entry)
        _remove_unlisted(fs, f"{edits}/{source.key}", {f"{edits}/{name}" for name in kept})
        return entry
    except GhframesError as exc:
        return _entry(source, error=str(exc))
    except (pygit2.GitError, OSError, KeyError, ValueError) as exc:
        return _entry(source, error=f"{source.spec}: {type(exc).__name__}: {exc}")


def _keep_earlier(fs, edits: str, entry: dict) -> dict:
    """A failed `entry`, still listing what the repository's last successful crawl wrote.

    Its state file names those shards, and they stay on disk until a later success replaces
    them: a failure now (an unreachable URL, a fetch error, a task that died) records its error
    but must not hide rows already mined from render and stats. Such an entry is `stale`.
    """
    try:
        _, state = shards.read_named_json(fs, f"{edits}/{entry['key']}", shards.STATE)
    except (GhframesError, OSError):
        return entry  # nothing readable to keep; the failure itself is what gets recorded
    if not state or state.get("status") != "ok":
        return entry
    if any(
        fs.get_file_info(f"{edits}/{name}").type != shards.pafs.FileType.File
        for name in state["shards"]
    ):
        return entry
    return state | {
        "status": "failed",
        "error": entry["error"],
        "stale": True,
        "metadata": entry["metadata"] or state.get("metadata", {}),
    }


def _remove_unlisted(fs, folder: str, listed: set[str]) -> None:
    """Delete shards the state no longer lists (a rewritten history's old shards)."""
    for info in fs.get_file_info(shards.pafs.FileSelector(folder)):
        if info.path.endswith(".parquet") and info.path not in listed:
            fs.delete_file(info.path)


def _gather(
    refs: list,
    on_done: Callable[[int, object], None],
    on_wait: Callable[[], None] | None = None,
) -> list:
    """Wait for every ref, calling `on_done(index, result)` as each finishes, and `on_wait()`
    every quarter second while none does; results in order.

    A task that raised something unforeseen, or whose worker died, gives its `RayError` as its
    result instead of stopping the run: it is one repository's failure, not the crawl's.
    """
    index = {ref: i for i, ref in enumerate(refs)}
    results: list = [None] * len(refs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=0.25)
        if not done:
            if on_wait is not None:
                on_wait()
            continue
        i = index[done[0]]
        try:
            results[i] = ray.get(done[0])
        except ray.exceptions.RayError as exc:
            results[i] = exc
        on_done(i, results[i])
    return results


@ray.remote(num_cpus=0)
class _CommitCounter:
    """Commits mined so far, by task: mining tasks add to it, the driver's progress bar reads."""

    def __init__(self) -> None:
        self._counts: Counter = Counter()

    def add(self, task: int, commits: int) -> None:
        self._counts[task] += commits

    def counts(self) -> dict[int, int]:
        return dict(self._counts)


def _reporter(counter, task: int) -> Callable[[int], None]:
    """What mining task `task` calls with each count of commits it has mined."""

    def report(commits: int) -> None:
        counter.add.remote(task, commits)

    return report


def _task_error(source: Source, exc: ray.exceptions.RayError, token: str | None) -> str:
    """One line naming `source` and what its task died of."""
    cause = getattr(exc, "cause", None) or exc
    lines = str(cause).strip().splitlines()
    text = f"{source.spec}: {type(cause).__name__}: {lines[0] if lines else 'no message'}"
    return text.replace(token, "***") if token else text


def _recorded(options: CrawlOptions) -> dict:
    """The options as the manifest records them (the cache's location changes no row)."""
    return {k: v for k, v in asdict(options).items() if k != "cache_dir"}


# Servers asked at once whether a remote source moved (each is one round trip, mostly waiting).
CHECK_THREADS = 16


def _unchanged(
    fs,
    edits: str,
    sources: Sequence[Source],
    previous: dict,
    options: CrawlOptions,
    token: str | None,
    progress: bool,
) -> tuple[dict[int, dict], dict[int, str]]:
    """The sources with nothing to mine, found in the driver: {index: previous entry} for each
    whose default branch is where the previous crawl, made with the same options and naming it
    alike, left it (a local repository read in place, a remote one's server asked as `git
    ls-remote` asks, nothing fetched); and {index: error} for remote ones whose server could
    not be asked, each that source's failure. Neither needs Ray; every other source does."""
    entries = previous.get("repos", {})
    if not sources or previous.get("options") != _recorded(options):
        return {}, {}

    def earlier(source: Source) -> dict | None:
        entry = entries.get(source.key)
        if entry is None or entry["status"] not in ("ok", "duplicate") or entry.get("stale"):
            return None
        return entry if entry["repo"] == source.repo else None  # else mined again, renamed

    candidates = [i for i, s in enumerate(sources) if earlier(s) is not None]
    states = {  # under today's name (a crawl that mines renames 0.1.0's)
        i: f"{edits}/{sources[i].key}/{shards.STATE}"
        for i in candidates
        if entries[sources[i].key]["status"] == "ok"
    }
    found = dict(zip(states, fs.get_file_info(list(states.values())), strict=True))
    candidates = [i for i in candidates if i not in found or found[i].type == pafs.FileType.File]

    def head_now(source: Source) -> str | None:
        if source.kind != "path":
            return remote_head(source, options.cache_dir, token)  # raises: the server failed
        try:
            return str(default_head(open_repository(source, ""), source).id)
        except (GhframesError, pygit2.GitError, OSError, KeyError, ValueError):
            return None  # the crawl proper reports it

    remote = sum(sources[i].kind != "path" for i in candidates)
    bar = Progress("check", "repo", len(candidates), enabled=progress and remote > 0)
    unchanged, unreachable = {}, {}
    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
        futures = {pool.submit(head_now, sources[i]): i for i in candidates}
        for future in as_completed(futures):
            i = futures[future]
            bar.update(1)
            entry = entries[sources[i].key]
            try:
                head = future.result()
            except GhframesError as exc:
                unreachable[i] = str(exc)
                continue
            if head == entry["head"]:
                metadata = sources[i].metadata or entry.get("metadata", {})
                unchanged[i] = entry | {"metadata": metadata}
    bar.close()
    return dict(sorted(unchanged.items())), dict(sorted(unreachable.items()))


def _mine_on_ray(
    sources: Sequence[Source],
    data: str,
    options: CrawlOptions,
    token: str | None,
    owner_of_root: dict[str, str],
    progress: bool,
) -> list[dict]:
    """Resolve and mine `sources` as Ray tasks (Ray is up); their manifest entries, in order.

    `owner_of_root`: {root commit: key of the repository mined for it}, updated as roots are
    found; a source whose root another owns is a duplicate, not mined again."""
    resolve_task = ray.remote(resolve).options(max_retries=1)
    mine_task = ray.remote(mine_repository).options(max_retries=1)
    bar = Progress("fetch", "repo", len(sources), enabled=progress)
    resolved = _gather(
        [resolve_task.remote(s, options, token) for s in sources],
        lambda i, r: bar.update(1),
    )
    bar.close()
    entries: list[dict | None] = [None] * len(sources)
    ref_source = []
    for i, (source, res) in enumerate(zip(sources, resolved, strict=True)):
        if isinstance(res, ray.exceptions.RayError):
            entries[i] = _entry(source, error=_task_error(source, res, token))
        elif "error" in res:
            entries[i] = _entry(source, error=res["error"])
        elif (owner := owner_of_root.setdefault(res["root"], source.key)) != source.key:
            entries[i] = _entry(
                source,
                status="duplicate",
                root=res["root"],
                head=res["head"],
                duplicate_of=owner,
            )
        else:
            ref_source.append(i)
    # Commits mined, as the tasks report them to a counter actor, polled by the driver.
    counter = _CommitCounter.remote() if ref_source else None
    refs = [
        mine_task.remote(
            sources[i],
            data,
            resolved[i]["head"],
            resolved[i]["root"],
            options,
            token,
            _reporter(counter, j),
        )
        for j, i in enumerate(ref_source)
    ]
    share = [resolved[i]["commits"] for i in ref_source]
    bar = Progress("mine", "commit", sum(share), enabled=progress)
    finished: dict[int, int] = {}  # task -> commits it mined in all
    changes = 0

    def show(reported: dict[int, int]) -> None:
        done = sum(finished.get(j, min(reported.get(j, 0), share[j])) for j in range(len(share)))
        bar.set(done, extra=f"repos={len(finished)}/{len(share)}, changes={changes:,}")

    def mined(j: int, entry: dict | ray.exceptions.RayError) -> None:
        nonlocal changes
        ok = isinstance(entry, dict) and entry["status"] == "ok"
        finished[j] = share[j] if ok else 0
        changes += entry["changes"] if ok else 0
        show(ray.get(counter.counts.remote()))

    def waiting() -> None:
        show(ray.get(counter.counts.remote()))

    for j, entry in enumerate(_gather(refs, mined, waiting)):
        i = ref_source[j]
        if isinstance(entry, ray.exceptions.RayError):
            entry = _entry(sources[i], error=_task_error(sources[i], entry, token))
        entries[i] = entry
    bar.close()
    return entries


def crawl(
    sources: Sequence[Source],
    data: str,
    options: CrawlOptions,
    token: str | None = None,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    failed: Sequence[tuple[Source, str]] = (),
    ray_timeout: float = 30.0,
) -> dict:
    """Crawl `sources` into DATA/edits and return the manifest written last.

    `failed` are sources that failed before the crawl (a GitHub lookup): (source, error),
    recorded as failures beside the others. `ray_timeout`: seconds to reach `ray_address`.
    Ray starts only for sources with something to mine (`_unchanged` tells in the driver);
    with none, and nothing failed, the manifest is returned with `up_to_date` and nothing is
    written."""
    fs, edits = _edits_dir(data)
    list(shards.remove_stale_temporaries(fs, edits))
    # A manifest this ghframes cannot read is refused, not overwritten.
    previous = shards.read_manifest(fs, edits, schema.load(EDITS)) or {}
    # Roots mined by earlier runs keep their owner, so a fork crawled later is not mined again.
    owner_of_root = {
        e["root"]: e["key"]
        for e in previous.get("repos", {}).values()
        if (e["status"] == "ok" or e.get("stale")) and e.get("root")
    }
    unchanged, unreachable = _unchanged(fs, edits, sources, previous, options, token, progress)
    failed = [*((sources[i], error) for i, error in unreachable.items()), *failed]
    todo = [s for i, s in enumerate(sources) if i not in unchanged and i not in unreachable]
    current = fs.get_file_info(f"{edits}/{shards.MANIFEST}").type == pafs.FileType.File
    if not todo and not failed and current:  # under today's name (a re-run renames 0.1.0's)
        return dict(previous, up_to_date=True)  # nothing to mine: no Ray, nothing written
    entries = list(unchanged.values())
    if todo:
        started = init_ray(
            ray_address, num_cpus, ray_timeout, log_to_driver=False, log_dir=data, announce=progress
        )
        try:
            entries += _mine_on_ray(todo, data, options, token, owner_of_root, progress)
        finally:
            if started:
                ray.shutdown()
    entries += [_entry(source, error=error) for source, error in failed]
    repos = dict(previous.get("repos", {}))
    for entry in entries:
        if entry["status"] == "failed":
            entry = _keep_earlier(fs, edits, entry)
        repos[entry["key"]] = entry
    edit_schema = schema.load(EDITS)
    manifest = {
        "table": EDITS,
        "version": edit_schema.version,
        "options": _recorded(options),
        "repos": dict(sorted(repos.items())),
    }
    shards.write_manifest(fs, edits, manifest)
    return manifest
