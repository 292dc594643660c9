"""Untrusted text stays data: what a repository, a server or a file holds reaches the terminal
(and an asciicast's labels) only with its control characters escaped (ghframes.text.shown)."""

from __future__ import annotations

import json

import pytest

from conftest import crawl
from fakegithub import Reply, client_for, repo_obj
from ghframes import cli
from ghframes.crawl.discover import discover
from ghframes.text import shown

# Each vector a terminal would act on, as a hostile name, message or error body would carry it.
VECTORS = {
    "osc title": "\x1b]0;pwned\x07",
    "osc 52": "\x1b]52;c;ZXZpbA==\x07",
    "csi": "\x1b[2J\x1b[31m",
    "bidi": "\u202eexe.txt",
    "c1 csi": "\x9b31m",
}
HOSTILE = "".join(VECTORS.values())


def assert_inert(text: str) -> None:
    """No character of `text` is one a terminal acts on (C0 but newline, DEL, C1, bidi)."""
    bad = [c for c in text if c != "\n" and not c.isprintable()]
    assert not bad, (bad, text)


def test_shown_writes_controls_in_the_editors_notation():
    assert shown("plain text, é, 中文, tab-free") == "plain text, é, 中文, tab-free"
    assert shown(VECTORS["osc title"]) == "^[]0;pwned^G"
    assert shown(VECTORS["osc 52"]) == "^[]52;c;ZXZpbA==^G"
    assert shown(VECTORS["csi"]) == "^[[2J^[[31m"
    assert shown(VECTORS["bidi"]) == "<202e>exe.txt"
    assert shown(VECTORS["c1 csi"]) == "<9b>31m"
    assert shown("a\nb\tc\x7f\u2028\u200b\udc9b") == "a^Jb^Ic^?<2028><200b><dc9b>"
    assert shown(ValueError("x\x1b")) == "x^["
    assert_inert(shown(HOSTILE))


def test_api_error_body_is_printed_escaped(github, tmp_path, capsys):
    github.routes["/repos/octo/hello"] = lambda seen: Reply(422, {"message": f"no {HOSTILE}"})
    # the source's failure (the others would be crawled): exit 1
    assert crawl("octo/hello", "--out", str(tmp_path / "d"), "--api-url", github.url) == 1
    out, err = capsys.readouterr()
    assert err.startswith("ghframes: error: ") and err.count("\n") == 1
    assert "answered 422 (no ^[]0;pwned^G^[]52;c;ZXZpbA==^G" in err
    assert_inert(out + err)


def test_local_folder_name_is_printed_escaped(tmp_path, capsys):
    folder = tmp_path / f"not-a-repo{HOSTILE}"
    folder.mkdir()
    assert crawl(str(folder), "--out", str(tmp_path / "d")) == 2
    out, err = capsys.readouterr()
    assert "not a git repository" in err and "not-a-repo^[]0;pwned^G" in err
    assert_inert(out + err)


def test_discovered_names_are_validated_never_used(github, capsys):
    github.routes["/orgs/acme/repos"] = lambda seen: Reply(
        200,
        [
            repo_obj(f"acme/evil{VECTORS['osc 52']}"),
            repo_obj("acme/../../etc"),
            repo_obj("acme\u202e/x"),
            repo_obj("acme/a b"),
            repo_obj("acme/good.name_1"),
        ],
    )
    found, skipped = discover(client_for(github), orgs=["acme"])
    assert [r.full_name for r in found] == ["acme/good.name_1"]
    assert skipped == {"invalid name": 4}


def test_named_repository_with_an_invalid_answer_is_an_error(github, tmp_path, capsys):
    github.routes["/repos/octo/hello"] = lambda seen: Reply(200, repo_obj(f"octo/{HOSTILE}"))
    assert crawl("octo/hello", "--out", str(tmp_path / "d"), "--api-url", github.url) == 1
    out, err = capsys.readouterr()
    assert "octo/hello: GitHub API at" in err and "invalid name" in err
    assert_inert(out + err)


def test_verify_render_and_stats_lines_are_escaped(tmp_path, monkeypatch, capsys):
    import ghframes.pipelines.render as render_pipeline
    import ghframes.stats as stats
    import ghframes.verify as verify

    monkeypatch.setattr(
        verify, "verify_dataset", lambda *a, **k: iter([f"s1: commit 0: src/{HOSTILE}.py: bad"])
    )
    assert cli.main(["verify", str(tmp_path)]) == 1
    failed = {"status": "failed", "error": f"clone of {HOSTILE} failed", "sessions": []}
    manifest = {"sessions": {}, "repos": {f"k{HOSTILE}": failed}}
    manifest["removed"] = {"shards": 0, "bytes": 0}
    monkeypatch.setattr(render_pipeline, "render_dataset", lambda *a, **k: manifest)
    assert cli.main(["render", str(tmp_path), "--no-progress"]) == 1
    monkeypatch.setattr(stats, "collect", lambda data: {"edits": {"failed": {HOSTILE: HOSTILE}}})
    assert cli.main(["stats", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "src/^[]0;pwned^G" in err and "clone of ^[]0;pwned^G" in err
    assert "^[]52;c;ZXZpbA==^G" in out
    assert_inert(out + err)


@pytest.mark.slow
def test_repository_with_hostile_names_crawls_renders_and_exports_inert(
    make_repo, tmp_path, ray_local, capsys
):
    """A folder name, a commit message and a path with escapes, through crawl, render, verify
    and export --format cast: nothing printed, and no marker label or title, holds a control."""
    repo = make_repo(f"proj{VECTORS['osc title']}{VECTORS['bidi']}")
    repo.commit(f"add {VECTORS['osc 52']}{VECTORS['csi']}", {"a.txt": "hello\n"})
    repo.commit(f"fix {VECTORS['c1 csi']}{VECTORS['osc title']}", {"a.txt": "hello world\n"})
    data = tmp_path / "data"
    assert crawl(str(repo.path), "--out", str(data)) == 0
    assert cli.main(["render", str(data), "--no-progress"]) == 0
    assert cli.main(["verify", str(data)]) == 0
    out, err = capsys.readouterr()
    assert "proj^[]0;pwned^G<202e>exe.txt" in out
    assert_inert(out + err)

    from ghframes.store.frames import open_dataset

    (info,) = open_dataset(str(data)).sessions()
    cast = tmp_path / "s.cast"
    argv = ["export", str(data), "--session", info.id, "--format", "cast", "-o", str(cast)]
    assert cli.main(argv) == 0
    lines = cast.read_text(encoding="utf-8").splitlines()
    header, events = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    labels = [text for _, kind, text in events if kind == "m"]
    assert labels == ["add ^[]52;c;ZXZpbA==^G^[[2J^[[31m", "fix <9b>31m^[]0;pwned^G"]
    assert_inert(header["title"] + "".join(labels))
    assert_inert(capsys.readouterr().out)


def test_log_lines_are_escaped(github, tmp_path):
    """A warning that quotes a server's link (a rate limit met on the page it names), from the
    installed command, whose log handler is the command line's own."""
    import subprocess
    import sys

    nxt = github.link("/orgs/acme/repos", {"x": VECTORS["osc 52"], "page": 2})
    answers = iter([Reply(429, {"message": "slow down"}, {"retry-after": "0"})])

    def route(seen):
        if seen.query.get("page") != "2":
            return Reply(200, [], {"Link": f'<{nxt}>; rel="next"'})
        return next(answers, Reply(422, {"message": f"gone {VECTORS['csi']}"}))

    github.routes["/orgs/acme/repos"] = route
    argv = ["--org", "acme", "--out", str(tmp_path / "d"), "--api-url", github.url]
    done = subprocess.run(
        [sys.executable, "-m", "ghframes", "crawl", *argv, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "rate limited" in done.stderr and "x=^[]52;c;ZXZpbA==^G" in done.stderr
    assert "gone ^[[2J" in done.stderr
    assert_inert(done.stdout + done.stderr)
