"""Repository discovery (names, searches past the 1,000-result cap, filters) on a fake GitHub."""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from fakegithub import FakeGitHub, Reply, Seen, client_for, paginated, repo_obj
from ghframes.crawl.discover import (
    _created_range,
    discover,
    is_owner_name_like,
    parse_owner_name,
    search,
)
from ghframes.errors import GhframesError


def search_route(fake: FakeGitHub, population: list[dict[str, Any]], terms: str):
    """`/search/repositories` over `population`, filtered by `created:` qualifiers, capped at 1,000.

    Every query must keep the search `terms` the user gave.
    """

    def created(repo: dict[str, Any]) -> date:
        return date.fromisoformat(repo["created_at"][:10])

    def route(seen: Seen) -> Reply:
        q = seen.query["q"]
        if terms not in q:
            return Reply(422, {"message": "Validation Failed", "errors": [{"message": q}]})
        found = population
        for value in re.findall(r"(?:^|\s)created:(\S+)", q):
            if m := re.fullmatch(r"(\S+)\.\.(\S+)", value):
                lo, hi = date.fromisoformat(m[1]), date.fromisoformat(m[2])
                found = [r for r in found if lo <= created(r) <= hi]
            elif value.startswith(">="):
                found = [r for r in found if created(r) >= date.fromisoformat(value[2:])]
            else:
                return Reply(422, {"message": f"unsupported by the fake: {value}"})
        found = sorted(found, key=lambda r: (created(r), r["full_name"]))
        per_page, page = int(seen.query["per_page"]), int(seen.query.get("page", 1))
        if page * per_page > 1000:
            return Reply(422, {"message": "Only the first 1000 search results are available"})
        chunk = found[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < min(len(found), 1000):
            headers["Link"] = (
                f'<{fake.link(seen.path, {**seen.query, "page": page + 1})}>; rel="next"'
            )
        body = {"total_count": len(found), "incomplete_results": False, "items": chunk}
        return Reply(200, body, headers)

    return route


def spread(n: int, first: date, days: int, prefix: str = "r") -> list[dict[str, Any]]:
    """`n` repositories created on days spread deterministically over `days` from `first`."""
    return [
        repo_obj(f"owner{i % 7}/{prefix}{i}", created=first + timedelta(days=(i * 7919) % days))
        for i in range(n)
    ]


# --- repository names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("octo/hello", ("octo", "hello")),
        ("a/b", ("a", "b")),
        ("a-b-c/x.y_z-1", ("a-b-c", "x.y_z-1")),
        ("o" * 39 + "/n", ("o" * 39, "n")),
        ("o/" + "n" * 100, ("o", "n" * 100)),
        ("octo/.github", ("octo", ".github")),
        ("octo/..x", ("octo", "..x")),
    ],
)
def test_parse_owner_name_accepts_github_names(text, expected):
    assert is_owner_name_like(text)
    assert parse_owner_name(text) == expected


@pytest.mark.parametrize(
    "text, part",
    [
        ("-octo/x", "owner"),
        ("octo-/x", "owner"),
        ("oc--to/x", "owner"),
        ("oc_to/x", "owner"),
        ("o" * 40 + "/x", "owner"),
        ("octo/", "name"),
        ("octo/.", "name"),
        ("octo/..", "name"),
        ("octo/na me", "name"),
        ("octo/na@me", "name"),
        ("octo/naïve", "name"),
        ("octo/" + "n" * 101, "name"),
    ],
)
def test_parse_owner_name_rejects_malformed_names(text, part):
    assert is_owner_name_like(text)
    with pytest.raises(GhframesError, match=f"malformed OWNER/NAME: an? {part} is"):
        parse_owner_name(text)


@pytest.mark.parametrize(
    "text",
    [
        "repo",
        "/abs/repo",
        "./repo",
        "../repo",
        "~/repo",
        "a/b/c",
        "https://github.com/octo/hello",
        "file:///srv/octo/hello",
        "git@github.com:octo/hello",
    ],
)
def test_paths_and_urls_are_not_owner_name(text):
    assert not is_owner_name_like(text)
    assert parse_owner_name(text) is None


# --- search and the 1,000-result cap ----------------------------------------------------------


def test_search_within_the_cap_is_one_query(github):
    population = spread(150, date(2015, 1, 1), 300)
    github.routes["/search/repositories"] = search_route(github, population, "language:python")
    found = [r.full_name for r in search(client_for(github), "language:python stars:>500")]
    assert sorted(found) == sorted(r["full_name"] for r in population)
    assert [s.query["q"] for s in github.seen] == ["language:python stars:>500"] * 2
    assert github.seen[0].query["per_page"] == "100"


def test_search_over_the_cap_is_split_by_creation_date(github, caplog):
    population = spread(2500, date(2012, 1, 1), 2900)
    github.routes["/search/repositories"] = search_route(github, population, "language:python")
    with caplog.at_level(logging.INFO, logger="ghframes.crawl.discover"):
        found = [r.full_name for r in search(client_for(github), "language:python")]

    assert Counter(found) == Counter(r["full_name"] for r in population)  # each exactly once
    assert "2500 results, more than the 1000 GitHub returns" in caplog.text
    assert "splitting it by creation date between 2007-10-01 and 2023-11-15" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # Oldest ranges first, so the order is deterministic and by creation date.
    created = {r["full_name"]: r["created_at"] for r in population}
    assert [created[n] for n in found] == sorted(created[n] for n in found)


def test_search_split_keeps_the_users_created_qualifier(github):
    population = spread(2500, date(2012, 1, 1), 2900)
    github.routes["/search/repositories"] = search_route(github, population, "language:python")
    found = [
        r.full_name for r in search(client_for(github), "language:python created:>=2014-01-01")
    ]
    expected = [r["full_name"] for r in population if r["created_at"] >= "2014-01-01"]
    assert len(expected) > 1000 and Counter(found) == Counter(expected)
    later = [s.query["q"] for s in github.seen[1:]]
    assert all(q.count("created:") == 1 and q.startswith("language:python created:") for q in later)
    assert min(re.search(r"created:(\S+)\.\.", q)[1] for q in later) == "2014-01-01"


def test_search_truncation_within_one_day_is_a_warning(github, caplog):
    crowded = [repo_obj(f"busy/r{i}", created=date(2016, 5, 5)) for i in range(1200)]
    population = crowded + spread(50, date(2012, 1, 1), 2900)
    github.routes["/search/repositories"] = search_route(github, population, "topic:x")
    with caplog.at_level(logging.INFO, logger="ghframes.crawl.discover"):
        found = list(search(client_for(github), "topic:x"))

    assert len(found) == len({r.full_name for r in found}) == 1000 + 50
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == (
        "search 'topic:x': 1200 repositories created on 2016-05-05, more than the 1000 GitHub "
        "returns for one query; results for that day are truncated"
    )
    assert all(s.query.get("page") in (None, *map(str, range(2, 11))) for s in github.seen)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("language:go", ("language:go", date(2007, 10, 1), date(2024, 1, 2))),
        ("a created:2020-01-01..2020-12-31 b", ("a b", date(2020, 1, 1), date(2020, 12, 31))),
        ("a created:2020-01-01..*", ("a", date(2020, 1, 1), date(2024, 1, 2))),
        ("a created:*..2020-01-01", ("a", date(2007, 10, 1), date(2020, 1, 1))),
        ("created:>2020-01-01 a", ("a", date(2020, 1, 2), date(2024, 1, 2))),
        ("a created:<2020-01-01", ("a", date(2007, 10, 1), date(2019, 12, 31))),
        ("a created:<=2020-01-01", ("a", date(2007, 10, 1), date(2020, 1, 1))),
        ("a created:2020-06-01", ("a", date(2020, 6, 1), date(2020, 6, 1))),
        ("a -created:2020-06-01", ("a -created:2020-06-01", date(2007, 10, 1), date(2024, 1, 2))),
        ("a created:>2020-01-01T10:00:00Z", None),
        ("created:>2020-01-01 created:<2021-01-01", None),
    ],
)
def test_created_range_understands_whole_date_qualifiers(query, expected):
    assert _created_range(query, today=date(2024, 1, 1)) == expected


# --- discovery --------------------------------------------------------------------------------


@pytest.fixture
def listings(github):
    org = [
        repo_obj("Acme/Tool"),
        repo_obj("acme/fork", fork=True),
        repo_obj("acme/old", archived=True),
        repo_obj("acme/gpl", license="GPL-3.0"),
        repo_obj("acme/none", license=None),
        repo_obj("acme/apache", license="Apache-2.0"),
    ]
    user = [
        repo_obj("acme/TOOL"),
        repo_obj("alice/lib", license="mit"),
        repo_obj("acme/fork", fork=True),
    ]
    github.routes["/orgs/acme/repos"] = paginated(github, org)
    github.routes["/users/alice/repos"] = paginated(github, user)
    return github


def test_discover_filters_and_counts_by_reason(listings):
    kept, skipped = discover(
        client_for(listings), orgs=["acme"], users=["alice"], licenses=["MIT", "apache-2.0"]
    )
    assert [r.full_name for r in kept] == ["Acme/Tool", "acme/apache", "alice/lib"]
    assert skipped == Counter(fork=1, archived=1, license=2, duplicate=2)


def test_discover_can_keep_forks_and_archived_and_any_license(listings):
    kept, skipped = discover(
        client_for(listings),
        orgs=["acme"],
        users=["alice"],
        include_forks=True,
        include_archived=True,
    )
    assert [r.full_name for r in kept] == [
        "Acme/Tool",
        "acme/fork",
        "acme/old",
        "acme/gpl",
        "acme/none",
        "acme/apache",
        "alice/lib",
    ]
    assert skipped == Counter(duplicate=2)


def test_discover_stops_listing_at_the_limit(github):
    github.routes["/orgs/acme/repos"] = paginated(
        github, [repo_obj(f"acme/r{i}") for i in range(250)]
    )
    kept, skipped = discover(client_for(github), orgs=["acme", "other"], limit=3)
    assert [r.full_name for r in kept] == ["acme/r0", "acme/r1", "acme/r2"]
    assert skipped == Counter()
    assert len(github.seen) == 1  # neither page 2 nor the second organisation was asked for
    assert discover(client_for(github), orgs=["acme"], limit=0) == ([], Counter())
    with pytest.raises(GhframesError, match="--limit -1: must be 0 or more"):
        discover(client_for(github), orgs=["acme"], limit=-1)
