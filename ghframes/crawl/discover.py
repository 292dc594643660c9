"""Repository discovery for `ghframes crawl`: OWNER/NAME names, searches and listings, filtered.

`parse_owner_name` tells GitHub's `OWNER/NAME` from a path or a clone URL. `search` lists every
match of a query, splitting it into `created:` date ranges where GitHub would serve only the
first 1,000. `discover` combines searches, organisations and users into one deduplicated,
filtered list of `RepoInfo`, counting what it left out and why.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta

from ghframes.crawl.github import SEARCH_CAP, GitHubClient, RepoInfo
from ghframes.errors import GhframesError

log = logging.getLogger(__name__)

# No repository on GitHub was created before this; the lower end of a date split.
GITHUB_EPOCH = date(2007, 10, 1)

_OWNER_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")
_DATE = r"\d{4}-\d{2}-\d{2}"
_CREATED_RE = re.compile(r"(?:^|(?<=\s))created:(\S*)")


# --- repository names -------------------------------------------------------------------------


def is_owner_name_like(text: str) -> bool:
    """Whether `text` is meant as GitHub's `OWNER/NAME` rather than a path or a clone URL.

    It is when it has exactly one `/`, is not a URL (`scheme://`) or an scp-style address
    (`git@host:owner/name`), and does not start like a path (`/`, `.`, `~`). It may still be
    malformed: `parse_owner_name` checks GitHub's rules.
    """
    if "://" in text or text.count("/") != 1 or text.startswith(("/", ".", "~")):
        return False
    return ":" not in text.split("/", 1)[0]


def parse_owner_name(text: str) -> tuple[str, str] | None:
    """Split `OWNER/NAME` into its parts; None when `text` is not meant as one.

    Raises `GhframesError` when `is_owner_name_like(text)` but the parts break GitHub's rules:
    an owner is 1-39 letters, digits or single hyphens, not starting or ending with a hyphen;
    a name is 1-100 letters, digits, `.`, `_` or `-`, and not `.` or `..`. Callers check for
    an existing local path first, since `dir/repo` is both.
    """
    if not is_owner_name_like(text):
        return None
    owner, name = text.split("/")
    if not _OWNER_RE.fullmatch(owner):
        raise GhframesError(
            f"{text!r}: malformed OWNER/NAME: an owner is 1-39 letters, digits or single "
            "hyphens, not starting or ending with a hyphen"
        )
    if not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise GhframesError(
            f"{text!r}: malformed OWNER/NAME: a name is 1-100 letters, digits, '.', '_' or '-', "
            "and not '.' or '..'"
        )
    return owner, name


# --- search and the 1,000-result cap ----------------------------------------------------------


def search(client: GitHubClient, query: str) -> Iterator[RepoInfo]:
    """Every repository matching search `query`, e.g. `"language:python stars:>500"`.

    GitHub returns at most 1,000 results per query. When there are more, the query is
    split into `created:` date ranges, halved until each has at most 1,000 results, and
    the ranges are listed oldest first; a single day with more still loses the excess,
    which is logged as a warning.
    """
    first = client.search(query)
    if first.total_count <= SEARCH_CAP:
        yield from first.repos
        return
    split = _created_range(query, today=client.today())
    if split is None:
        log.warning(
            "search %r: %d results, but only the first %d are reachable and its created: "
            "qualifier is not a date range that can be split; results are truncated",
            query,
            first.total_count,
            SEARCH_CAP,
        )
        yield from first.repos
        return
    base, lo, hi = split
    log.info(
        "search %r: %d results, more than the %d GitHub returns for one query; "
        "splitting it by creation date between %s and %s",
        query,
        first.total_count,
        SEARCH_CAP,
        lo,
        hi,
    )
    yield from _search_by_date(client, base, lo, hi)


def _search_by_date(client: GitHubClient, base: str, lo: date, hi: date) -> Iterator[RepoInfo]:
    """Search `base` in `created:` ranges within [lo, hi], bisecting any that is too big."""
    ranges = 0
    stack = [(lo, hi)]  # popped oldest first, so results come in ascending date order
    while stack:
        lo, hi = stack.pop()
        found = client.search(f"{base} created:{lo.isoformat()}..{hi.isoformat()}".strip())
        if found.total_count > SEARCH_CAP and lo < hi:
            mid = lo + (hi - lo) // 2
            stack += [(mid + timedelta(days=1), hi), (lo, mid)]
            continue
        if found.total_count > SEARCH_CAP:
            log.warning(
                "search %r: %d repositories created on %s, more than the %d GitHub returns "
                "for one query; results for that day are truncated",
                base,
                found.total_count,
                lo,
                SEARCH_CAP,
            )
        ranges += 1
        yield from found.repos
    log.info("search %r: listed in %d creation-date ranges", base, ranges)


def _created_range(query: str, today: date) -> tuple[str, date, date] | None:
    """Split `query` into (query without `created:`, first day, last day) for a date split.

    Without a `created:` qualifier the range is GitHub's whole life, up to tomorrow (UTC dates
    are a day ahead of some users'). Qualifiers of whole dates are understood: `D`, `D..D`,
    `D..*`, `*..D`, `>D`, `>=D`, `<D`, `<=D`. Anything else (times, two qualifiers) gives None.
    """
    found = _CREATED_RE.findall(query)
    lo, hi = GITHUB_EPOCH, today + timedelta(days=1)
    if len(found) > 1:
        return None
    if found:
        value = found[0]
        one_day = timedelta(days=1)
        if m := re.fullmatch(rf"({_DATE}|\*)\.\.({_DATE}|\*)", value):
            lo = lo if m[1] == "*" else date.fromisoformat(m[1])
            hi = hi if m[2] == "*" else date.fromisoformat(m[2])
        elif m := re.fullmatch(rf"(>=|>|<=|<)?({_DATE})", value):
            day = date.fromisoformat(m[2])
            if m[1] in (None, ">=", ">"):
                lo = day + one_day if m[1] == ">" else day
            if m[1] in (None, "<=", "<"):
                hi = day - one_day if m[1] == "<" else day
        else:
            return None
    base = " ".join(_CREATED_RE.sub("", query).split())
    return base, lo, hi


# --- discovery --------------------------------------------------------------------------------


def discover(
    client: GitHubClient,
    queries: Sequence[str] = (),
    orgs: Sequence[str] = (),
    users: Sequence[str] = (),
    licenses: Iterable[str] = (),
    include_forks: bool = False,
    include_archived: bool = False,
    limit: int | None = None,
) -> tuple[list[RepoInfo], Counter[str]]:
    """Repositories found by `queries`, then `orgs`, then `users`, filtered and deduplicated.

    Returns them in order of discovery (first listing wins, names compared case-insensitively)
    and a count of listings left out by reason: `"invalid name"` (a server's answer that
    `RepoInfo.problem` rejects: never used, printed or remembered),
    `"duplicate"`, `"fork"`, `"archived"`, `"license"` (not in the SPDX allow-list `licenses`,
    compared case-insensitively; with an allow-list, a repository without a license is left
    out too). Each listing counts once, under the first reason that applies, in that order.
    Listing stops once `limit` repositories are kept.
    """
    if limit is not None and limit < 0:
        raise GhframesError(f"--limit {limit}: must be 0 or more")
    kept: list[RepoInfo] = []
    skipped: Counter[str] = Counter()
    if limit == 0:
        return kept, skipped
    allowed = {spdx.lower() for spdx in licenses}
    seen: set[str] = set()
    # Generators: nothing is requested until the loop below reaches a listing.
    listings: list[Iterable[RepoInfo]] = [
        *(search(client, query) for query in queries),
        *map(client.org_repos, orgs),
        *map(client.user_repos, users),
    ]
    for listing in listings:
        for repo in listing:
            if problem := repo.problem():
                skipped[problem] += 1
                continue
            reason = _skip_reason(repo, seen, allowed, include_forks, include_archived)
            seen.add(repo.full_name.lower())
            if reason:
                skipped[reason] += 1
                continue
            kept.append(repo)
            # Stop here rather than at the next listing: that could cost another page.
            if len(kept) == limit:
                return kept, skipped
    return kept, skipped


def _skip_reason(
    repo: RepoInfo, seen: set[str], allowed: set[str], include_forks: bool, include_archived: bool
) -> str | None:
    if repo.full_name.lower() in seen:
        return "duplicate"
    if repo.fork and not include_forks:
        return "fork"
    if repo.archived and not include_archived:
        return "archived"
    if allowed and (repo.license or "").lower() not in allowed:
        return "license"
    return None
