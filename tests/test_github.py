"""The GitHub REST client against a scripted GitHub API served over HTTP on loopback (no mocks)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable

import pytest

from conftest import crawl
from fakegithub import T0, Reply, Seen, Sleeper, client_for, paginated, repo_obj, serve
from ghframes.crawl.github import GitHubClient, RepoInfo
from ghframes.errors import GhframesError

TOKEN = "ghp_ThisTokenMustNeverLeak0123456789abcdef"


# --- repository metadata ----------------------------------------------------------------------


def test_repo_info_from_api_and_metadata():
    info = RepoInfo.from_api(repo_obj("Octo/Hello", license="Apache-2.0", fork=True))
    assert info == RepoInfo(
        full_name="Octo/Hello",
        clone_url="https://github.com/Octo/Hello.git",
        default_branch="main",
        stars=7,
        license="Apache-2.0",
        fork=True,
        archived=False,
        size_kb=42,
        html_url="https://github.com/Octo/Hello",
    )
    assert json.loads(json.dumps(info.metadata())) == info.metadata()
    assert info.metadata()["license"] == "Apache-2.0"
    assert RepoInfo.from_api(repo_obj("o/n", license=None)).license is None


def test_repo_info_from_incomplete_object_names_the_field():
    obj = repo_obj("octo/hello")
    del obj["default_branch"]
    with pytest.raises(
        GhframesError, match=r"^octo/hello: GitHub API answer lacks 'default_branch'$"
    ):
        RepoInfo.from_api(obj)


# --- requests, pagination, errors -------------------------------------------------------------


def test_repository_sends_github_headers_to_the_enterprise_prefix(github):
    github.routes["/repos/octo/hello"] = lambda seen: Reply(200, repo_obj("octo/hello"))
    with client_for(github) as client:
        assert client.repository("octo", "hello").full_name == "octo/hello"
    (seen,) = github.seen
    assert seen.path == "/repos/octo/hello"
    assert seen.headers["accept"] == "application/vnd.github+json"
    assert seen.headers["x-github-api-version"] == "2022-11-28"
    assert re.fullmatch(r"ghframes/\S+", seen.headers["user-agent"])
    assert "authorization" not in seen.headers  # no token given, none sent


def test_token_is_sent_as_bearer(github):
    github.routes["/repos/octo/hello"] = lambda seen: Reply(200, repo_obj("octo/hello"))
    client_for(github, token=TOKEN).repository("octo", "hello")
    assert github.seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_org_and_user_listings_follow_link_pages(github):
    org = [repo_obj(f"acme/r{i}") for i in range(250)]
    user = [repo_obj(f"alice/u{i}") for i in range(5)]
    github.routes["/orgs/acme/repos"] = paginated(github, org)
    github.routes["/users/alice/repos"] = paginated(github, user)
    client = client_for(github)
    assert [r.full_name for r in client.org_repos("acme")] == [r["full_name"] for r in org]
    assert [r.full_name for r in client.user_repos("alice")] == [r["full_name"] for r in user]
    org_requests = github.requests_to("/orgs/acme/repos")
    assert [s.query.get("page") for s in org_requests] == [None, "2", "3"]
    assert all(s.query["type"] == "all" and s.query["per_page"] == "100" for s in org_requests)
    (user_request,) = github.requests_to("/users/alice/repos")
    assert user_request.query == {"type": "owner", "per_page": "100"}


def test_link_to_another_host_is_not_followed(github):
    with serve() as elsewhere:
        elsewhere.routes["/orgs/acme/repos"] = lambda seen: Reply(200, [])
        github.routes["/orgs/acme/repos"] = lambda seen: Reply(
            200,
            [repo_obj("acme/a")],
            {"Link": f'<{elsewhere.url}/orgs/acme/repos?page=2>; rel="next"'},
        )
        with pytest.raises(GhframesError, match="linked its next page to another host or scheme"):
            list(client_for(github, token=TOKEN).org_repos("acme"))
        assert elsewhere.seen == []


def test_link_to_the_same_host_over_another_scheme_is_not_followed(github):
    github.routes["/orgs/acme/repos"] = lambda seen: Reply(
        200, [], {"Link": f'<{github.url.replace("http:", "https:")}/x?page=2>; rel="next"'}
    )
    with pytest.raises(GhframesError, match=r"another host or scheme \(https://127\.0\.0\.1:"):
        list(client_for(github, token=TOKEN).org_repos("acme"))
    assert len(github.seen) == 1


def test_link_to_another_host_carrying_the_token_is_one_line_without_it(github, tmp_path, capsys):
    with serve() as elsewhere:
        far = elsewhere.url.replace("127.0.0.1", "localhost")  # another host, not just a port
        github.routes["/orgs/acme/repos"] = lambda seen: Reply(
            200,
            [repo_obj("acme/a")],
            {"Link": f'<{far}/{TOKEN}/orgs?page=2&x={TOKEN}&api_key=k1>; rel="next"'},
        )
        argv = ["--org", "acme", "--out", str(tmp_path / "d"), "--api-url", github.url]
        assert crawl(*argv, env={"GITHUB_TOKEN": TOKEN}) == 2
        assert elsewhere.seen == []
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "linked its next page to another host or scheme" in err
    assert f"http://localhost:{far.split(':')[2].split('/')[0]}" in err
    assert TOKEN not in out + err and "k1" not in out + err


def test_same_host_link_with_credentials_is_followed_but_never_cached(github, tmp_path):
    """A proxy that writes credentials into its `Link`s: the pages are read, and no cache file
    holds the token or a credential-like parameter (those pages are not cached at all)."""

    def route(seen: Seen) -> Reply:
        page = int(seen.query.get("page", 1))
        headers = {"ETag": f'"p{page}"'}
        if page == 1:
            nxt = github.link("/orgs/acme/repos", {"page": 2, "access_token": "s3cr3t"})
            headers["Link"] = f'<{nxt}>; rel="next"'
        elif page == 2:
            nxt = github.link("/orgs/acme/repos", {"page": 3, "q": TOKEN})
            headers["Link"] = f'<{nxt}>; rel="next"'
        return Reply(200, [repo_obj(f"acme/r{page}")], headers)

    github.routes["/orgs/acme/repos"] = route
    cache = tmp_path / "cache"
    names = [
        r.full_name for r in client_for(github, token=TOKEN, cache_dir=cache).org_repos("acme")
    ]
    assert names == ["acme/r1", "acme/r2", "acme/r3"]
    files = [f.read_text() for f in cache.iterdir()]
    assert len(files) == 1 and '"acme/r3"' in files[0]  # the last page links nowhere
    for text in files:
        assert TOKEN not in text and "s3cr3t" not in text and "access_token" not in text


def test_credential_like_parameters_are_left_out_of_errors(github):
    github.routes["/orgs/acme/repos"] = lambda seen: Reply(
        200,
        [],
        {"Link": f'<{github.link("/orgs/acme/next", {"api_key": "k1", "sig": "s1"})}>; rel="next"'},
    )
    github.routes["/orgs/acme/next"] = lambda seen: Reply(400, {"message": "bad"})
    with pytest.raises(GhframesError) as err:
        list(client_for(github).org_repos("acme"))
    assert "api_key=***" in str(err.value) and "sig=***" in str(err.value)
    assert "k1" not in str(err.value) and "s1" not in str(err.value)


def test_missing_repository_is_a_clear_error(github):
    with pytest.raises(GhframesError) as err:
        client_for(github).repository("octo", "missing")
    assert str(err.value) == f"octo/missing: no such repository on {github.host}"


def test_missing_org_and_user_are_clear_errors(github):
    client = client_for(github)
    with pytest.raises(GhframesError, match=f"^nobody: no such organisation on {github.host}$"):
        list(client.org_repos("nobody"))
    with pytest.raises(GhframesError, match=f"^nobody: no such user on {github.host}$"):
        list(client.user_repos("nobody"))


def test_bad_credentials_and_other_client_errors(github):
    github.routes["/repos/octo/hello"] = lambda seen: Reply(401, {"message": "Bad credentials"})
    github.routes["/search/repositories"] = lambda seen: Reply(
        422, {"message": "Validation Failed", "errors": [{"message": "bad qualifier"}]}
    )
    github.routes["/orgs/secret/repos"] = lambda seen: Reply(
        403, {"message": "Resource not accessible by integration"}
    )
    sleeper = Sleeper()
    client = client_for(github, token=TOKEN, sleep=sleeper)
    with pytest.raises(GhframesError) as err:
        client.repository("octo", "hello")
    assert str(err.value) == (
        f"/api/v3/repos/octo/hello: GitHub API at {github.host} rejected the credentials "
        "(401 Bad credentials); check GITHUB_TOKEN"
    )
    with pytest.raises(GhframesError) as err:
        client.search("stars:>x")
    assert str(err.value) == (
        f"/api/v3/search/repositories?q=stars:>x&per_page=100: GitHub API at {github.host} "
        "answered 422 (Validation Failed: bad qualifier)"
    )
    # A 403 that is not a rate limit is an error at once, not a wait.
    with pytest.raises(GhframesError, match="answered 403 \\(Resource not accessible"):
        list(client.org_repos("secret"))
    assert sleeper.calls == []


# --- rate limits ------------------------------------------------------------------------------


def script(*replies: Reply) -> Callable[[Seen], Reply]:
    """A route answering with `replies` in turn, then repeating the last one."""
    queue = list(replies)
    return lambda seen: queue.pop(0) if len(queue) > 1 else queue[0]


def test_primary_rate_limit_waits_until_reset(github, caplog):
    github.routes["/repos/octo/hello"] = script(
        Reply(
            403,
            {"message": "API rate limit exceeded"},
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0) + 3)},
        ),
        Reply(200, repo_obj("octo/hello")),
    )
    sleeper = Sleeper()
    with caplog.at_level(logging.INFO, logger="ghframes.crawl.github"):
        info = client_for(github, sleep=sleeper).repository("octo", "hello")
    assert info.full_name == "octo/hello"
    assert sleeper.calls == [pytest.approx(4.0)]  # until the reset, plus 1 s of clock slack
    assert len(github.seen) == 2
    until = time.strftime("%H:%M:%S", time.localtime(T0 + 4))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"rate limited by {github.host} (primary limit) on /api/v3/repos/octo/hello: "
        f"waiting 4 s until {until}"
    )


def test_rate_limit_reset_beyond_max_wait_is_a_clear_error(github):
    github.routes["/repos/octo/hello"] = lambda seen: Reply(
        403,
        {"message": "API rate limit exceeded"},
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0) + 3600)},
    )
    sleeper = Sleeper()
    with pytest.raises(GhframesError) as err:
        client_for(github, sleep=sleeper, max_wait=900).repository("octo", "hello")
    assert str(err.value) == (
        f"/api/v3/repos/octo/hello: rate limited by {github.host} (primary limit) for 3601 s, "
        "longer than the longest wait allowed (900 s); try again later or raise --max-wait"
    )
    assert sleeper.calls == []
    assert len(github.seen) == 1


def test_secondary_rate_limit_waits_retry_after(github, caplog):
    github.routes["/orgs/acme/repos"] = script(
        Reply(429, {"message": "You have exceeded a secondary rate limit"}, {"retry-after": "7"}),
        Reply(200, [repo_obj("acme/a")]),
    )
    sleeper = Sleeper()
    with caplog.at_level(logging.INFO, logger="ghframes.crawl.github"):
        names = [r.full_name for r in client_for(github, sleep=sleeper).org_repos("acme")]
    assert names == ["acme/a"]
    assert sleeper.calls == [7.0]
    assert [r.getMessage() for r in caplog.records] == [
        f"rate limited by {github.host} (secondary limit) on "
        "/api/v3/orgs/acme/repos?type=all&per_page=100: waiting 7 s until "
        + time.strftime("%H:%M:%S", time.localtime(T0 + 7))
    ]


def test_secondary_rate_limit_without_retry_after_waits_a_minute(github):
    github.routes["/orgs/acme/repos"] = script(
        Reply(403, {"message": "You have exceeded a secondary rate limit."}),
        Reply(200, []),
    )
    sleeper = Sleeper()
    assert list(client_for(github, sleep=sleeper).org_repos("acme")) == []
    assert sleeper.calls == [60.0]


def test_endless_rate_limiting_gives_up(github):
    github.routes["/repos/octo/hello"] = lambda seen: Reply(429, {}, {"retry-after": "1"})
    sleeper = Sleeper()
    with pytest.raises(GhframesError, match="still rate limited by .* after 8 waits"):
        client_for(github, sleep=sleeper).repository("octo", "hello")
    assert sleeper.calls == [1.0] * 8


# --- retries ----------------------------------------------------------------------------------


def test_server_error_is_retried(github):
    github.routes["/repos/octo/hello"] = script(
        Reply(500, {"message": "boom"}), Reply(200, repo_obj("octo/hello"))
    )
    assert client_for(github).repository("octo", "hello").full_name == "octo/hello"
    assert len(github.seen) == 2


def test_server_errors_beyond_retries_name_the_status(github):
    github.routes["/repos/octo/hello"] = lambda seen: Reply(503, {"message": "unavailable"})
    with pytest.raises(GhframesError) as err:
        client_for(github, retries=2).repository("octo", "hello")
    assert str(err.value) == (
        f"/api/v3/repos/octo/hello: GitHub API at {github.host} answered 503 (unavailable)"
    )
    assert len(github.seen) == 3  # the request and two retries


def test_timeout_is_retried(github):
    github.routes["/repos/octo/hello"] = script(
        Reply(200, repo_obj("octo/hello"), delay=1.0), Reply(200, repo_obj("octo/hello"))
    )
    start = time.monotonic()
    info = client_for(github, timeout=0.2).repository("octo", "hello")
    assert info.full_name == "octo/hello"
    assert len(github.seen) == 2
    assert time.monotonic() - start < 1.0  # the stalled answer was not waited for


def test_unreachable_api_is_a_clear_error():
    with serve() as fake:
        url = fake.url
    with pytest.raises(GhframesError, match=r"^/api/v3/repos/octo/hello: no answer from GitHub"):
        GitHubClient(api_url=url, retries=1, backoff_factor=0).repository("octo", "hello")


def test_api_url_must_be_http():
    with pytest.raises(GhframesError, match="not an API URL"):
        GitHubClient(api_url="ftp://example.com/api")


# --- ETag cache -------------------------------------------------------------------------------


def test_etag_cache_answers_304_for_a_new_client(github, tmp_path):
    org = [repo_obj(f"acme/r{i}") for i in range(250)]
    github.routes["/orgs/acme/repos"] = paginated(github, org, etags=True)
    cache = tmp_path / "cache"

    first = [r.metadata() for r in client_for(github, cache_dir=cache).org_repos("acme")]
    assert len(first) == 250
    assert all("if-none-match" not in s.headers for s in github.seen)
    assert len(list(cache.iterdir())) == 3  # one entry per page

    github.seen.clear()
    second = [r.metadata() for r in client_for(github, cache_dir=cache).org_repos("acme")]
    assert second == first
    # Every page was asked for conditionally; the bare 304s carried no Link header, so
    # pages 2 and 3 could only be found through the cache.
    assert [s.query.get("page") for s in github.seen] == [None, "2", "3"]
    assert all(s.headers["if-none-match"].startswith('W/"') for s in github.seen)


def test_changed_page_and_damaged_cache_entry_are_fetched_again(github, tmp_path):
    items = [repo_obj("acme/a")]
    github.routes["/orgs/acme/repos"] = paginated(github, items, etags=True)
    cache = tmp_path / "cache"
    client_for(github, cache_dir=cache).org_repos("acme").__next__()

    items.append(repo_obj("acme/b"))  # the page changes: its ETag no longer matches
    names = [r.full_name for r in client_for(github, cache_dir=cache).org_repos("acme")]
    assert names == ["acme/a", "acme/b"]

    (entry,) = cache.iterdir()
    entry.write_text("{not json")
    github.seen.clear()
    names = [r.full_name for r in client_for(github, cache_dir=cache).org_repos("acme")]
    assert names == ["acme/a", "acme/b"]
    assert "if-none-match" not in github.seen[0].headers
    assert json.loads(entry.read_text())["body"][1]["full_name"] == "acme/b"


# --- the token never leaks --------------------------------------------------------------------


def test_token_never_appears_in_logs_errors_or_cache(github, tmp_path, caplog):
    github.routes["/orgs/acme/repos"] = script(
        Reply(429, {"message": "secondary rate limit"}, {"retry-after": "2"}),
        Reply(200, [repo_obj("acme/a")], {"ETag": '"e1"'}),
    )
    # GitHub does not echo tokens, but a proxy in front of an Enterprise server might.
    github.routes["/repos/octo/hello"] = lambda seen: Reply(
        401, {"message": f"Bad credentials: {seen.headers['authorization']}"}
    )
    github.routes["/users/alice/repos"] = lambda seen: Reply(
        500, {"message": f"upstream rejected {seen.headers['authorization']}"}
    )
    cache = tmp_path / "cache"
    client = client_for(github, token=TOKEN, cache_dir=cache)
    texts = [repr(client)]
    with caplog.at_level(logging.DEBUG):  # every logger, urllib3's included
        assert [r.full_name for r in client.org_repos("acme")] == ["acme/a"]
        for call in (
            lambda: client.repository("octo", "hello"),
            lambda: list(client.user_repos("alice")),
        ):
            with pytest.raises(GhframesError) as err:
                call()
            texts += [str(err.value), repr(err.value)]
        with pytest.raises(GhframesError) as err:
            client.repository("octo", "missing")
        texts.append(str(err.value))

    assert all(s.headers["authorization"] == f"Bearer {TOKEN}" for s in github.seen)
    assert "rate limited" in caplog.text and "***" in texts[1]
    files = list(cache.iterdir())
    assert [re.fullmatch(r"[0-9a-f]{64}\.json", f.name) is not None for f in files] == [True]
    for text in [*texts, caplog.text, *(f.read_text() for f in files)]:
        assert TOKEN not in text
