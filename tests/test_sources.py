"""Classifying SOURCE arguments: URLs, scp-like ssh, OWNER/NAME, local paths, and bad input."""

from __future__ import annotations

import pytest

from ghframes.errors import GhframesError
from ghframes.sources import parse_source, redact


@pytest.mark.parametrize(
    ("spec", "kind", "repo"),
    [
        ("https://github.com/Octo/Hello.git", "url", "github.com/Octo/Hello"),
        ("git://127.0.0.1:9418/team/proj.git", "url", "127.0.0.1/team/proj"),
        ("ssh://git@example.org/team/proj", "url", "example.org/team/proj"),
        ("git@example.org:team/proj.git", "url", "example.org/team/proj"),
        ("file:///srv/git/proj.git", "url", "proj"),
        ("torvalds/linux", "github", "github.com/torvalds/linux"),
        ("a-b/c.d_e-f", "github", "github.com/a-b/c.d_e-f"),
    ],
)
def test_classifies_sources(spec, kind, repo):
    source = parse_source(spec)
    assert (source.kind, source.repo) == (kind, repo)


def test_local_path_wins_over_owner_name(tmp_path, monkeypatch):
    (tmp_path / "owner" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    source = parse_source("owner/name")
    assert (source.kind, source.repo, source.location) == (
        "path",
        "name",
        str(tmp_path / "owner/name"),
    )


def test_credentials_never_reach_identity_or_spec():
    source = parse_source("https://user:s3cret@example.org/team/proj.git")
    assert "s3cret" not in source.spec + source.repo + source.key
    assert redact("https://u:p@h:8443/x") == "https://h:8443/x"


def test_keys_are_safe_file_names():
    source = parse_source("https://example.org/../../etc/passwd")
    assert "/" not in source.key and ".." not in source.key


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "-bad/name",
            "'-bad/name': malformed OWNER/NAME: an owner is 1-39 letters, digits or "
            "single hyphens, not starting or ending with a hyphen",
        ),
        (
            "owner/na me",
            "'owner/na me': malformed OWNER/NAME: a name is 1-100 letters, digits, "
            "'.', '_' or '-', and not '.' or '..'",
        ),
        ("./missing/dir", "./missing/dir: no such path"),
        ("/no/such/repo", "/no/such/repo: no such path"),
        ("https:///nohost", "https:///nohost: clone URL has no host"),
    ],
)
def test_bad_sources_name_the_input(spec, message):
    with pytest.raises(GhframesError) as err:
        parse_source(spec)
    assert str(err.value) == message
