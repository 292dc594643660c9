"""A scripted GitHub REST API served over HTTP on loopback, shared by the discovery and crawl tests."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ghframes.crawl.github import GitHubClient

API_PREFIX = "/api/v3"  # served like GitHub Enterprise, so the client must keep the prefix
T0 = 1_700_000_000.0  # the injected clock's "now" in `client_for`

# --- the fake GitHub --------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering


@dataclass
class Seen:
    """One request as the server received it."""

    path: str  # without API_PREFIX
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased


class FakeGitHub:
    """A GitHub API on loopback: `routes[path](seen) -> Reply`; every request is recorded."""

    def __init__(self, port: int) -> None:
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}{API_PREFIX}"
        self.routes: dict[str, Callable[[Seen], Reply]] = {}
        self.seen: list[Seen] = []

    def link(self, path: str, query: dict[str, Any]) -> str:
        return f"{self.url}{path}?{urlencode(query)}"

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as GitHub
    # Headers and body go out in two writes; with Nagle on, each reply stalls ~40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        fake: FakeGitHub = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        seen = Seen(
            path=parts.path.removeprefix(API_PREFIX),
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        fake.seen.append(seen)
        route = fake.routes.get(seen.path) if parts.path.startswith(API_PREFIX) else None
        reply = route(seen) if route else Reply(404, {"message": "Not Found"})
        time.sleep(reply.delay)
        payload = b"" if reply.status == 304 else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    # Keep-alive handler threads wait on idle client connections: do not join them on close.
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out closed the socket under a stalled reply; that is expected


@contextlib.contextmanager
def serve() -> Iterator[FakeGitHub]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeGitHub(server.server_address[1])  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server.fake  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def repo_obj(
    full_name: str,
    *,
    fork: bool = False,
    archived: bool = False,
    license: str | None = "MIT",
    created: date = date(2015, 1, 1),
) -> dict[str, Any]:
    return {
        "full_name": full_name,
        "clone_url": f"https://github.com/{full_name}.git",
        "html_url": f"https://github.com/{full_name}",
        "default_branch": "main",
        "stargazers_count": 7,
        "license": {"spdx_id": license, "key": (license or "").lower()} if license else None,
        "fork": fork,
        "archived": archived,
        "size": 42,
        "created_at": f"{created.isoformat()}T12:00:00Z",
    }


def paginated(fake: FakeGitHub, items: list[Any], etags: bool = False) -> Callable[[Seen], Reply]:
    """A listing route serving `items` in pages of `per_page`, linked by `Link` headers.

    With `etags`, each page carries an ETag and an `If-None-Match` that matches gets a bare
    304 (no `Link`: the client must take it from its cache).
    """

    def route(seen: Seen) -> Reply:
        per_page = int(seen.query.get("per_page", 30))
        page = int(seen.query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        etag = 'W/"' + hashlib.sha256(json.dumps(chunk).encode()).hexdigest()[:16] + '"'
        if etags and seen.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag})
        headers = {"ETag": etag} if etags else {}
        last = -(-len(items) // per_page)
        if page < last:
            nxt = fake.link(seen.path, {**seen.query, "page": page + 1})
            end = fake.link(seen.path, {**seen.query, "page": last})
            headers["Link"] = f'<{nxt}>; rel="next", <{end}>; rel="last"'
        return Reply(200, chunk, headers)

    return route


# --- a client of it ---------------------------------------------------------------------------


class Sleeper:
    """An injected `sleep` that records what it was asked for and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client_for(fake: FakeGitHub, **kwargs: Any) -> GitHubClient:
    """A `GitHubClient` of `fake` that retries at once, never sleeps and thinks it is T0."""
    defaults: dict[str, Any] = {
        "api_url": fake.url,
        "retries": 2,
        "backoff_factor": 0,
        "timeout": 5.0,
        "sleep": Sleeper(),
        "clock": lambda: T0,
    }
    return GitHubClient(**{**defaults, **kwargs})
