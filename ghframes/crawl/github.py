"""GitHub's REST API for discovery: `GitHubClient` and the `RepoInfo` objects it returns.

`GitHubClient` speaks the small part of the API that discovery needs (one repository, one
repository search, an organisation's or a user's repositories). It follows `Link` pagination,
waits out rate limits within a bound, retries server errors and dropped connections with
urllib3's `Retry`, and keeps an on-disk ETag cache so that a re-run costs no quota for pages
that did not change. What to list, and what to leave out, is `ghframes.crawl.discover`'s job.

The token is sent only in the `Authorization` header of requests to the API's own host, and
pagination is never followed to another host or scheme. It never enters a URL, a cache key or
file, a log message or an exception; nor do credential-like query parameters (`*token*`,
`*secret*`, `*key*`, `*sig*`, `*auth*`, …) or a URL's user and password: messages show them
as `***`, and a page whose `Link` carries them is not cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any, NamedTuple
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit

import pyarrow.fs as pafs
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ghframes.errors import GhframesError
from ghframes.store.shards import write_json_atomic

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
ACCEPT = "application/vnd.github+json"
API_VERSION = "2022-11-28"
PER_PAGE = 100  # the most GitHub serves per page
SEARCH_CAP = 1000  # GitHub returns at most this many results for one search query
# GitHub's reset time is in whole seconds and its clock is not ours: wait a little past it.
RESET_SLACK_S = 1.0
# GitHub asks for at least a minute's pause after a secondary limit that names no wait.
SECONDARY_LIMIT_WAIT_S = 60.0
# A server that keeps answering "rate limited" must not hold a crawl forever.
MAX_RATE_LIMIT_WAITS = 8

# Query parameters whose values are credentials, or may be: left out of messages and caches.
_SECRET_PARAM = re.compile(r"token|secret|passw|pwd|key|sig|auth|credential|session|jwt", re.I)
# `NAME=VALUE` with a credential-like NAME, and `scheme://USER[:PASSWORD]@`, in free text.
_SECRET_IN_TEXT = re.compile(
    r"(?i)([\w.-]*(?:token|secret|passw|pwd|key|sig|auth|credential|session|jwt)[\w.-]*=)"
    r"[^&\s#;,)'\"]+|(?<=://)[^/\s@]+@"
)
# What a repository's `full_name` from the API must look like before it is used or printed.
FULL_NAME_RE = re.compile(r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+")


# --- repository metadata ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RepoInfo:
    """What discovery keeps of a GitHub repository (one object of the REST API)."""

    full_name: str  # "OWNER/NAME"
    clone_url: str
    default_branch: str
    stars: int
    license: str | None  # SPDX id ("MIT", "NOASSERTION" for an unrecognised one); None if none
    fork: bool
    archived: bool
    size_kb: int
    html_url: str

    @classmethod
    def from_api(cls, obj: dict[str, Any]) -> RepoInfo:
        """Build from a repository object as `/repos`, `/search` and the listings return it."""
        try:
            license_ = obj.get("license") or {}
            return cls(
                full_name=obj["full_name"],
                clone_url=obj["clone_url"],
                default_branch=obj["default_branch"],
                stars=int(obj["stargazers_count"]),
                license=license_.get("spdx_id") or None,
                fork=bool(obj["fork"]),
                archived=bool(obj.get("archived", False)),
                size_kb=int(obj["size"]),
                html_url=obj["html_url"],
            )
        except KeyError as exc:
            name = obj.get("full_name", "repository object")
            raise GhframesError(f"{name}: GitHub API answer lacks {exc.args[0]!r}") from None

    def problem(self) -> str | None:
        """Why this answer cannot be crawled ("invalid name"), or None.

        A server's `full_name` names folders and rows and is printed: it must be `OWNER/NAME`
        of letters, digits, `.`, `_` and `-` (`FULL_NAME_RE`), neither part `.` or `..`.
        """
        parts = self.full_name.split("/")
        if not FULL_NAME_RE.fullmatch(self.full_name) or {".", ".."} & set(parts):
            return "invalid name"
        return None

    def metadata(self) -> dict[str, Any]:
        """The fields as a JSON-able dict, for manifests and edit shards."""
        return dataclasses.asdict(self)


# --- the client -------------------------------------------------------------------------------


class _Page(NamedTuple):
    body: Any  # the decoded JSON document
    next_url: str | None  # the `Link: rel="next"` target, if any


class SearchResults(NamedTuple):
    """One search query's answer, as `GitHubClient.search` gives it."""

    total_count: int  # every match, also those past SEARCH_CAP that GitHub does not serve
    repos: Iterator[RepoInfo]  # the served matches; later pages are asked for as it is read


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("ghframes")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"ghframes/{version}"


def _next_link(link_header: str | None) -> str | None:
    if not link_header:
        return None
    for link in requests.utils.parse_header_links(link_header):
        if link.get("rel") == "next":
            return link.get("url")
    return None


def _display_url(url: str) -> str:
    """`url`'s path and decoded query for messages, with credentials of any kind left out."""
    parts = urlsplit(url)
    query = "&".join(
        f"{k}={'***' if _SECRET_PARAM.search(k) else v}" for k, v in parse_qsl(parts.query)
    )
    return parts.path + (f"?{query}" if query else "")


def _origin_of(parts: SplitResult) -> str:
    """`scheme://host[:port]` of a split URL, without any user or password."""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":?"
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def _has_credentials(url: str) -> bool:
    """Whether `url` carries a user, a password or a credential-like query parameter."""
    parts = urlsplit(url)
    return "@" in parts.netloc or any(_SECRET_PARAM.search(k) for k, _ in parse_qsl(parts.query))


class GitHubClient:
    """A GitHub REST API client for discovery: rate-limit aware, retrying, ETag-cached.

    `token` (e.g. from `$GITHUB_TOKEN`, read by the caller) is sent as a Bearer token.
    `cache_dir` holds one JSON file per requested URL for conditional requests; None turns
    the cache off. Rate-limit waits longer than `max_wait` seconds raise `GhframesError`.
    `retries` and `backoff_factor` govern urllib3's retries of 5xx answers and of failed or
    timed-out connections (`timeout` seconds). `sleep` and `clock` are injectable for tests.
    """

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        token: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        max_wait: float = 900.0,
        timeout: float = 30.0,
        retries: int = 4,
        backoff_factor: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GhframesError(f"{api_url!r}: not an API URL (expected https://HOST[/api/v3])")
        self.api_url = api_url.rstrip("/")
        self.host = parts.netloc
        self._origin = (parts.scheme, parts.netloc)
        self.cache_dir = None if cache_dir is None else os.path.abspath(cache_dir)
        self.max_wait = max_wait
        self.timeout = timeout
        self.retries = retries
        self._token = token or None
        self._sleep = sleep
        self._clock = clock
        self._fs = pafs.LocalFileSystem()
        self._session = requests.Session()
        self._session.headers.update(
            {"Accept": ACCEPT, "X-GitHub-Api-Version": API_VERSION, "User-Agent": _user_agent()}
        )
        retry = Retry(
            total=retries,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            backoff_factor=backoff_factor,
            # 403/429 waits are ours (bounded by max_wait, logged); urllib3 must not sleep on them.
            respect_retry_after_header=False,
            # Hand back the last 5xx answer so the error can quote GitHub's message.
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"GitHubClient({self.api_url!r}, token={'***' if self._token else None})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Public API.

    def repository(self, owner: str, name: str) -> RepoInfo:
        """The repository `owner/name`; `GhframesError` if it does not exist."""
        url = self._url(f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}")
        page = self._get(url, not_found=f"{owner}/{name}: no such repository on {self.host}")
        info = RepoInfo.from_api(page.body)
        if problem := info.problem():
            raise self._error(
                f"{owner}/{name}: GitHub API at {self.host} answered a repository with an "
                f"{problem} ({info.full_name!r}, {info.clone_url!r}); not crawling it"
            )
        return info

    def org_repos(self, org: str) -> Iterator[RepoInfo]:
        """Every repository of organisation `org` that the token can see, in GitHub's order."""
        url = self._url(f"/orgs/{quote(org, safe='')}/repos", {"type": "all", "per_page": PER_PAGE})
        for body in self._pages(url, not_found=f"{org}: no such organisation on {self.host}"):
            yield from map(RepoInfo.from_api, body)

    def user_repos(self, user: str) -> Iterator[RepoInfo]:
        """Every repository owned by `user`, in GitHub's order."""
        url = self._url(
            f"/users/{quote(user, safe='')}/repos", {"type": "owner", "per_page": PER_PAGE}
        )
        for body in self._pages(url, not_found=f"{user}: no such user on {self.host}"):
            yield from map(RepoInfo.from_api, body)

    def search(self, query: str) -> SearchResults:
        """One repository search, e.g. `"language:python stars:>500"`, asked for at once.

        GitHub serves at most `SEARCH_CAP` of the matches; `ghframes.crawl.discover.search`
        splits a query that has more.
        """
        url = self._url("/search/repositories", {"q": query, "per_page": PER_PAGE})
        first = self._get(url)
        return SearchResults(first.body["total_count"], self._search_results(query, first))

    def today(self) -> date:
        """Today's UTC date by the client's (injectable) clock: where a `created:` split ends."""
        return datetime.fromtimestamp(self._clock(), tz=UTC).date()

    def _search_results(self, query: str, first: _Page) -> Iterator[RepoInfo]:
        if first.body.get("incomplete_results"):
            log.warning("search %r: GitHub timed out and returned incomplete results", query)
        for body in self._pages_from(first):
            yield from map(RepoInfo.from_api, body["items"])

    # HTTP.

    def _url(self, path: str, params: dict[str, Any] | None = None) -> str:
        return f"{self.api_url}{path}" + (f"?{urlencode(params)}" if params else "")

    def _pages(self, url: str, not_found: str | None = None) -> Iterator[Any]:
        yield from self._pages_from(self._get(url, not_found=not_found))

    def _pages_from(self, page: _Page) -> Iterator[Any]:
        """The body of `page` and of every page after it, following `Link: rel="next"`."""
        yield page.body
        while page.next_url:
            # The token goes with every request: a link to another host (or to this one over
            # another scheme) must not receive it. The link itself is not quoted: it may carry
            # the token, or anything else, in its host, path or query.
            nxt = urlsplit(page.next_url)
            if (nxt.scheme, nxt.netloc) != self._origin:
                raise self._error(
                    f"GitHub API at {self.host} linked its next page to another host or scheme "
                    f"({_origin_of(nxt)}); not following it"
                )
            page = self._get(page.next_url)
            yield page.body

    def _get(self, url: str, not_found: str | None = None) -> _Page:
        """GET `url` (conditionally, if cached), waiting out rate limits; errors name the URL.

        `not_found` is the error message for a 404, when the caller knows what was missing.
        """
        where = _display_url(url)
        cache_path = self._cache_path(url)
        cached = self._read_cache(cache_path)
        headers = {"If-None-Match": cached["etag"]} if cached else {}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        for attempt in range(MAX_RATE_LIMIT_WAITS + 1):
            try:
                response = self._session.get(url, headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                reason = getattr(exc.args[0], "reason", exc) if exc.args else exc
                raise self._error(
                    f"{where}: no answer from GitHub API at {self.host} after {self.retries} "
                    f"retries ({reason})"
                ) from None
            wait, kind = self._rate_limit_wait(response)
            if wait is None:
                break
            if attempt == MAX_RATE_LIMIT_WAITS:
                raise self._error(
                    f"{where}: still rate limited by {self.host} after {attempt} waits; "
                    "try again later"
                )
            if wait > self.max_wait:
                raise self._error(
                    f"{where}: rate limited by {self.host} ({kind}) for {wait:.0f} s, longer "
                    f"than the longest wait allowed ({self.max_wait:.0f} s); try again later "
                    "or raise --max-wait"
                )
            until = time.strftime("%H:%M:%S", time.localtime(self._clock() + wait))
            log.warning(
                "rate limited by %s (%s) on %s: waiting %.0f s until %s",
                self.host,
                kind,
                where,
                wait,
                until,
            )
            self._sleep(wait)

        status = response.status_code
        if status == 304 and cached:
            # Not modified: the cached answer stands, and GitHub charged no quota for it.
            return _Page(cached["body"], _next_link(cached.get("link")))
        if status == 200:
            body = self._json(response, where)
            link = response.headers.get("Link")
            etag = response.headers.get("ETag")
            if cache_path and etag:
                entry = {"url": self._redact(where), "etag": etag, "link": link, "body": body}
                self._write_cache(cache_path, entry)
            return _Page(body, _next_link(link))
        raise self._error(self._status_message(response, where, not_found))

    def _rate_limit_wait(self, response: requests.Response) -> tuple[float | None, str]:
        """How long GitHub asks us to wait before repeating `response`'s request (None: no wait).

        Primary limit: `x-ratelimit-remaining: 0`, wait until `x-ratelimit-reset` (epoch s).
        Secondary limit: `retry-after` seconds, or a minute when GitHub names no time.
        """
        if response.status_code not in (403, 429):
            return None, ""
        headers = response.headers
        retry_after = _number(headers.get("retry-after"))
        if retry_after is not None:
            return max(retry_after, 0.0), "secondary limit"
        reset = _number(headers.get("x-ratelimit-reset"))
        if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
            return max(reset - self._clock(), 0.0) + RESET_SLACK_S, "primary limit"
        if "rate limit" in _message(response).lower():
            return SECONDARY_LIMIT_WAIT_S, "secondary limit"
        return None, ""

    def _status_message(
        self, response: requests.Response, where: str, not_found: str | None
    ) -> str:
        status = response.status_code
        if status == 404 and not_found:
            return not_found
        if status == 401:
            return (
                f"{where}: GitHub API at {self.host} rejected the credentials (401 "
                f"{_message(response) or 'Unauthorized'}); check GITHUB_TOKEN"
            )
        detail = _message(response)
        return f"{where}: GitHub API at {self.host} answered {status}" + (
            f" ({detail})" if detail else ""
        )

    def _json(self, response: requests.Response, where: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self._error(
                f"{where}: GitHub API at {self.host} sent a non-JSON answer"
            ) from None

    def _error(self, message: str) -> GhframesError:
        return GhframesError(self._redact(message))

    def _redact(self, text: str) -> str:
        """`text` without the token, credential-like `NAME=VALUE` pairs or URL user info."""
        # GitHub never echoes a token, but a proxy in front of an Enterprise server might.
        if self._token:
            text = text.replace(self._token, "***")
        return _SECRET_IN_TEXT.sub(lambda m: f"{m[1]}***" if m[1] else "***@", text)

    # ETag cache.

    def _cache_path(self, url: str) -> str | None:
        """One file per URL and media type; the token is never part of the key."""
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(f"{url}\n{ACCEPT}".encode()).hexdigest()
        return f"{self.cache_dir}/{key}.json"

    def _write_cache(self, path: str, entry: dict[str, Any]) -> None:
        """Keep `entry` unless it would put a credential on disk (that page is then not cached).

        A `Link` is kept as sent, since a 304 answer needs it, so a link carrying credentials
        (or an answer quoting the token anywhere) is never written; it costs a full request
        next time instead.
        """
        text = json.dumps(entry)
        link = entry.get("link") or ""
        links = [u for u in re.findall(r"<([^>]*)>", link) if _has_credentials(u)]
        if links or (self._token and self._token in text) or _SECRET_IN_TEXT.search(link):
            log.info("%s: not cached (the answer carries credentials)", entry["url"])
            return
        write_json_atomic(self._fs, path, entry)

    def _read_cache(self, path: str | None) -> dict[str, Any] | None:
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8") as f:
                entry = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # A damaged entry only costs one unconditional request; it is rewritten after it.
            log.info("%s: ignoring unreadable ETag cache entry (%s)", path, exc)
            return None
        if not isinstance(entry, dict) or not {"etag", "body"} <= entry.keys():
            return None
        return entry


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message(response: requests.Response) -> str:
    """GitHub's `message` field (and the first validation error's, if any), or ""."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    message = str(body.get("message") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0].get("message")
        if first:
            message = f"{message}: {first}" if message else str(first)
    return message
