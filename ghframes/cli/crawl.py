"""`ghframes crawl`: turn SOURCE arguments and GitHub discovery into sources, run the crawl pipeline."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping

from ghframes.cli.cluster import check_reachable, connect_bounds
from ghframes.crawl.sources import (
    Source,
    default_head,
    github_source,
    open_repository,
    parse_source,
)
from ghframes.errors import GhframesError
from ghframes.store import lock
from ghframes.store.shards import filesystem
from ghframes.text import shown


def check_writable(data: str) -> None:
    """Fail before any work if DATA cannot be written (creating nothing in a bad place)."""
    if "://" in data and not data.startswith("file://"):
        raise GhframesError(
            f"{data}: crawl writes to a local folder (remote DATA is for render and training)"
        )
    path = os.path.abspath(data.removeprefix("file://"))
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or (probe == path and not os.path.isdir(path)):
        raise GhframesError(f"{data}: not a directory ({probe} is a file)")
    # Try it: permission bits do not tell for root, read-only mounts or pseudo-filesystems.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ghframes-probe-", dir=probe))
    except OSError as exc:
        raise GhframesError(f"{data}: not writable ({exc.strerror or exc})") from None


def _github_sources(
    args: argparse.Namespace, env: Mapping[str, str], cache: str, specs: list[Source]
) -> tuple[list[Source], list[tuple[Source, str]], list[str]]:
    """Sources for OWNER/NAME arguments and --query/--org/--user discovery, with API metadata;
    the OWNER/NAME sources whose lookup failed, each with its error; discovery's errors.

    Every source fails alone: an API that fails one lookup, or a whole discovery, costs only
    that source or that discovery, and the rest are still crawled."""
    wanted = [s for s in specs if s.kind == "github"]
    if not (wanted or args.query or args.org or args.user):
        return [], [], []
    from ghframes.crawl.discover import discover
    from ghframes.crawl.github import GitHubClient

    client = GitHubClient(
        api_url=args.api_url,
        token=env.get("GITHUB_TOKEN") or None,
        cache_dir=os.path.join(cache, "api"),
        max_wait=args.max_wait,
    )
    infos, failed, errors = [], [], []
    for source in wanted:
        try:
            infos.append(client.repository(*source.spec.split("/")))
        except GhframesError as exc:
            message = str(exc)
            if not message.startswith(f"{source.spec}: "):
                message = f"{source.spec}: {message}"
            failed.append((source, message))
    found, filtered = [], {}
    if args.query or args.org or args.user:
        try:
            found, filtered = discover(
                client,
                queries=args.query,
                orgs=args.org,
                users=args.user,
                licenses=args.license,
                include_forks=args.include_forks,
                include_archived=args.include_archived,
                limit=args.limit,
            )
        except GhframesError as exc:
            errors.append(f"discovery: {exc}")
    for reason, n in sorted(filtered.items()):
        print(f"discovery: skipped {n} repositories ({shown(reason)})", file=sys.stderr)
    out = []
    for info in infos + found:
        owner, name = info.full_name.split("/")
        out.append(
            github_source(
                owner,
                name,
                clone_url=info.clone_url,
                default_branch=info.default_branch,
                metadata=info.metadata(),
            )
        )
    return out, failed, errors


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    # Ray reads its connection bounds at import and at start-up: set for the whole command.
    with connect_bounds(args.ray_address, args.ray_timeout):
        return _run(args, env)


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ghframes.pipelines.crawl import CrawlOptions, crawl

    if not (args.sources or args.query or args.org or args.user):
        raise GhframesError("crawl: give at least one SOURCE, --query, --org or --user")
    if args.max_file_bytes <= 0:
        raise GhframesError(f"--max-file-bytes {args.max_file_bytes}: must be positive")
    check_writable(args.out)
    specs = [parse_source(s) for s in args.sources]
    for source in specs:  # local problems are found before any work starts
        if source.kind == "path":
            default_head(open_repository(source, cache_dir=""), source)
    _, root = filesystem(args.out)
    cache = args.cache or os.path.join(root, "cache")
    check_reachable(args.ray_address, args.ray_timeout)
    found, lookup_failed, discovery_errors = _github_sources(args, env, cache, specs)
    sources = [s for s in specs if s.kind != "github"] + found
    unique: dict[str, Source] = {}
    for source in sources:
        unique.setdefault(source.key, source)
    # A failed lookup of a repository that discovery found after all is no failure.
    failed_lookups = {s.key: (s, e) for s, e in lookup_failed if s.key not in unique}
    if discovery_errors and not (unique or failed_lookups):
        raise GhframesError("; ".join(discovery_errors))  # nothing to crawl but that error
    for error in discovery_errors:
        print(f"ghframes: error: {shown(error)}", file=sys.stderr)
    with lock.hold(args.out, "crawl", create=True):
        manifest = crawl(
            list(unique.values()),
            args.out,
            CrawlOptions(cache_dir=cache, max_file_bytes=args.max_file_bytes),
            token=env.get("GITHUB_TOKEN") or None,
            ray_address=args.ray_address,
            num_cpus=args.num_cpus,
            progress=not args.no_progress,
            failed=list(failed_lookups.values()),
            ray_timeout=args.ray_timeout,
        )
    entries = [manifest["repos"][key] for key in [*unique, *failed_lookups]]
    if manifest.get("up_to_date"):
        commits = sum(e["commits"] for e in entries)
        n = len(entries)
        print(
            shown(
                f"up to date: {n} repositor{'ies' if n != 1 else 'y'}, {commits} commits "
                f"in {args.out}/edits"
            )
        )
        return 1 if discovery_errors else 0
    for e in entries:
        line = f"{e['status']:9} {e['repo']}: {e['commits']} commits, {e['changes']} changes"
        if e["status"] == "duplicate":
            line = (
                f"duplicate {e['repo']}: same root commit as {e['duplicate_of']}, not mined again"
            )
        elif e.get("stale"):
            line += " kept from an earlier run"
        print(shown(line))  # names, folders and errors come from repositories and servers
    failed = [e for e in entries if e["status"] == "failed"]
    for e in failed:
        print(f"ghframes: error: {shown(e['error'])}", file=sys.stderr)
    done = len(entries) - len(failed)
    print(shown(f"crawled {done}/{len(entries)} repositories into {args.out}/edits"))
    return 1 if failed or discovery_errors else 0
