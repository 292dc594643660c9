"""Classifying SOURCE arguments: URLs, scp-like ssh, OWNER/NAME, local paths, and bad input."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pygit2
import pytest

from ghframes.crawl.sources import (
    ABANDONED_AFTER_S,
    HOST,
    _Credentials,
    github_source,
    open_repository,
    parse_source,
    redact,
    token_host,
)
from ghframes.errors import GhframesError
from ghframes.store.identity import without_location

TOKEN = "ghp_SecretThatMustNotLeak000000000000000"


def location_hash(folder) -> str:
    """What a local repository's identity carries of its absolute location."""
    return hashlib.sha256(str(folder).encode()).hexdigest()[:8]


@pytest.mark.parametrize(
    ("spec", "kind", "repo"),
    [
        ("https://github.com/Octo/Hello.git", "url", "github.com/Octo/Hello"),
        ("git://127.0.0.1:9418/team/proj.git", "url", "127.0.0.1/team/proj"),
        ("ssh://git@example.org/team/proj", "url", "example.org/team/proj"),
        ("git@example.org:team/proj.git", "url", "example.org/team/proj"),
        ("file:///srv/git/proj.git", "url", f"local-{location_hash('/srv/git/proj.git')}/proj"),
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
    folder = tmp_path / "owner/name"
    assert (source.kind, source.repo, source.location) == (
        "path",
        f"local-{location_hash(folder)}/name",
        str(folder),
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


def test_token_goes_only_to_the_github_host_over_https():
    userpass = pygit2.enums.CredentialType.USERPASS_PLAINTEXT
    callbacks = _Credentials(TOKEN, "github.com")
    assert isinstance(
        callbacks.credentials("https://github.com/o/n.git", None, userpass), pygit2.UserPass
    )
    for url in ("https://evil.example/o/n.git", "http://github.com/o/n.git"):
        with pytest.raises(pygit2.Passthrough):
            callbacks.credentials(url, None, userpass)


def test_only_github_clone_urls_may_receive_the_token():
    assert token_host(parse_source("octo/cat")) == "github.com"
    assert token_host(parse_source("https://github.com/octo/private.git")) == "github.com"
    for spec in ("https://gitlab.example/o/n.git", "git://127.0.0.1/o/n.git", "file:///tmp/r"):
        assert token_host(parse_source(spec)) is None


@pytest.fixture
def password_server():
    """A smart-HTTP git server on loopback that asks every request for a password; yields
    (its URL, the Authorization headers it received)."""
    received: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.headers.get("Authorization"))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/team/proj.git", received
    server.shutdown()


def test_a_server_asking_for_a_password_gets_no_token_and_a_clean_error(password_server, tmp_path):
    url, received = password_server
    for source in (parse_source(url), github_source("team", "proj", clone_url=url)):
        with pytest.raises(GhframesError) as err:
            open_repository(source, str(tmp_path / "cache"), token=TOKEN)
        assert str(err.value).startswith(f"{source.spec}: clone failed (")
    assert received and not any(received)
    assert not list((tmp_path / "cache").iterdir())


def test_only_this_mirrors_abandoned_partial_clones_are_removed(make_repo, tmp_path):
    r = make_repo("work")
    r.commit("one", {"a.py": "x = 1\n"})
    source = parse_source(f"file://{r.path}")
    cache = tmp_path / "cache"
    mirror = f"{cache}/{source.key}.git"
    dead = subprocess.Popen(["true"])
    dead.wait()
    old = time.time() - ABANDONED_AFTER_S - 60
    partials = {
        "killed here": f"{mirror}.partial-{HOST}-{dead.pid}",
        "killed, pid-only name": f"{mirror}.partial-{dead.pid}",
        "live here": f"{mirror}.partial-{HOST}-{os.getppid()}",
        "other machine, idle": f"{mirror}.partial-elsewhere-{dead.pid}",
        "other machine, busy": f"{mirror}.partial-elsewhere-{dead.pid + 1}",
        "other repository": f"{cache}/other-0123456789.git.partial-{HOST}-{dead.pid}",
    }
    for path in partials.values():
        os.makedirs(f"{path}/objects/pack")
        open(f"{path}/objects/pack/tmp_pack", "wb").close()
    idle = partials["other machine, idle"]  # nothing in it changed for longer than the limit
    for parent, dirs, files in os.walk(idle):
        for name in dirs + files:
            os.utime(os.path.join(parent, name), (old, old))
    os.utime(idle, (old, old))
    repo = open_repository(source, str(cache))
    assert repo.head.peel(pygit2.Commit).message == "one\n"
    left = {case for case, path in partials.items() if os.path.exists(path)}
    assert left == {"live here", "other machine, busy", "other repository"}


def test_a_local_repository_is_named_by_its_origin_else_by_its_folders(make_repo, tmp_path):
    clone = make_repo("checkout")
    clone.commit("one", {"a.txt": "a\n"})
    clone.git("remote", "add", "origin", "git@github.com:Owner/Name.git")
    assert parse_source(str(clone.path)).repo == "github.com/Owner/Name"
    clone.git("remote", "set-url", "origin", "https://user:secret@example.org/team/tool.git")
    assert parse_source(str(clone.path)).repo == "example.org/team/tool"  # no credentials
    # a file:// origin says no more than the folder does
    clone.git("remote", "set-url", "origin", f"file://{tmp_path}/elsewhere.git")
    named = f"local-{location_hash(clone.path)}/{clone.path.parent.name}/checkout"
    assert parse_source(str(clone.path)).repo == named
    # no origin: the folder, with its parent when the folder's name says nothing, and a hash
    # of where it is, so that two folders of one name are two repositories
    a, b = make_repo("a/repo"), make_repo("b/repo")
    for r in (a, b):
        r.commit("one", {"a.txt": "a\n"})
    assert parse_source(str(a.path)).repo == f"local-{location_hash(a.path)}/a/repo"
    assert parse_source(str(b.path)).repo == f"local-{location_hash(b.path)}/b/repo"
    assert parse_source(str(a.path)).key != parse_source(str(b.path)).key
    same = [make_repo(f"{side}/x/src") for side in ("left", "right")]
    for r in same:
        r.commit("one", {"a.txt": "a\n"})
    one, two = (parse_source(str(r.path)).repo for r in same)
    assert one.endswith("/x/src") and two.endswith("/x/src") and one != two
    plain = make_repo("tally")
    plain.commit("one", {"a.txt": "a\n"})
    assert parse_source(str(plain.path)).repo == f"local-{location_hash(plain.path)}/tally"
    # the same folder by its .git folder, a trailing slash or a file:// URL: the same name
    for spec in (f"{plain.path}/.git", f"{plain.path}/", f"file://{plain.path}"):
        assert parse_source(spec).repo == parse_source(str(plain.path)).repo, spec


def test_a_render_leaves_a_local_repositorys_location_out_of_its_name():
    assert without_location(f"local-{location_hash('/x/proj')}/proj") == "proj"
    assert without_location("local-0123abcd/owner+name/repo") == "owner+name/repo"
    for other in ("github.com/o/n", "local-0123abc/proj", "x/local-0123abcd/proj", "tally"):
        assert without_location(other) == other


def test_a_local_repositorys_key_is_the_one_it_had_before_its_name_carried_a_hash(make_repo):
    """DATA/edits/<key> of a local repository is named as before, so that a crawl into DATA
    made then finds its folders (and mines them again, under the new identity)."""
    plain, mirror = make_repo("tally"), make_repo("owner+name/repo")
    for r, folder in ((plain, "tally"), (mirror, "owner_name_repo")):
        r.commit("one", {"a.txt": "a\n"})
        digest = hashlib.sha256(str(r.path).encode()).hexdigest()[:10]
        assert parse_source(str(r.path)).key == f"{folder}-{digest}"
