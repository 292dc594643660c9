"""The crawl command end to end on real repositories, a loopback GitHub API and a real Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ghframes
from conftest import crawl, edit_rows, edits_manifest
from fakegithub import Reply
from ghframes import cli
from ghframes.crawl.sources import parse_source

pytestmark = pytest.mark.usefixtures("ray_local")


def test_crawls_the_sample_repository(sample_repo, tmp_path, capsys):
    data = tmp_path / "data"
    assert crawl(str(sample_repo), "--out", str(data)) == 0
    (entry,) = edits_manifest(data)["repos"].values()
    name = parse_source(str(sample_repo)).repo  # local-HASH/tally: no remote (test_sources)
    assert entry["status"] == "ok" and entry["repo"] == name and name.endswith("/tally")
    assert entry["commits"] == 18  # 20 commits, 2 of them only on the merged branch
    assert entry["skipped"] == {"binary": 1, "not_utf8": 1, "symlink": 1, "vendored": 1}
    table = edit_rows(data)
    assert table.num_rows == entry["changes"]
    # Every row is self-contained and exact: `after` is the file's bytes at that commit.
    for row in table.to_pylist():
        if row["after"] is not None:
            shown = subprocess.run(
                ["git", "show", f"{row['commit']}:{row['path']}"],
                cwd=sample_repo,
                capture_output=True,
                check=True,
            ).stdout
            assert row["after"].encode() == shown, (row["commit"], row["path"])
    statuses = {(r["status"], r["path"]) for r in table.to_pylist()}
    assert ("renamed", "tally/__main__.py") in statuses and ("deleted", "notes.txt") in statuses
    assert f"ok        {name}: 18 commits" in capsys.readouterr().out


def test_stats_reports_counts(sample_repo, tmp_path, capsys):
    data = tmp_path / "data"
    crawl(str(sample_repo), "--out", str(data))
    capsys.readouterr()
    assert cli.main(["stats", str(data), "--json"], env={}) == 0
    stats = json.loads(capsys.readouterr().out)["edits"]
    assert stats["repositories"] == 1 and stats["commits"] == 18
    assert stats["changes"] == edit_rows(data).num_rows
    assert stats["skipped"]["binary"] == 1


def test_output_is_deterministic(sample_repo, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert crawl(str(sample_repo), "--out", str(a)) == 0
    assert crawl(str(sample_repo), "--out", str(b)) == 0
    names = sorted(p.relative_to(a) for p in (a / "edits").rglob("*.parquet"))
    assert names and names == sorted(p.relative_to(b) for p in (b / "edits").rglob("*.parquet"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_a_fork_sharing_the_root_commit_is_mined_once(sample_repo, tmp_path, capsys):
    fork = tmp_path / "tally-fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(sample_repo), str(fork)], check=True)
    data = tmp_path / "data"
    assert crawl(str(sample_repo), f"file://{fork}", "--out", str(data)) == 0
    entries = sorted(edits_manifest(data)["repos"].values(), key=lambda e: e["kind"])
    assert [(e["kind"], e["status"]) for e in entries] == [("path", "ok"), ("url", "duplicate")]
    assert entries[1]["duplicate_of"] == entries[0]["key"] and not entries[1]["shards"]
    assert "same root commit" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "{arg}: no such path"),
        ("plain_dir", "{arg}: not a git repository"),
        ("empty_repo", "{arg}: empty repository (no commits on the default branch)"),
        (
            "malformed",
            "'{arg}': malformed OWNER/NAME: an owner is 1-39 letters, digits or single "
            "hyphens, not starting or ending with a hyphen",
        ),
        ("out_is_file", "{out}: not a directory ({out} is a file)"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(case, message, tmp_path, make_repo, capsys):
    out = tmp_path / "data"
    arg = {
        "missing": str(tmp_path / "nope"),
        "plain_dir": str(tmp_path),
        "empty_repo": "",
        "malformed": "bad--owner/x",
        "out_is_file": "",
    }[case]
    if case == "empty_repo":
        arg = str(make_repo("empty").path)
    if case == "out_is_file":
        good = make_repo("good")
        good.commit("one", {"a": "a\n"})
        arg = str(good.path)
        out.write_text("precious")
    assert crawl(arg, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err == f"ghframes: error: {message.format(arg=arg, out=out)}\n"
    if case == "out_is_file":
        assert out.read_text() == "precious"
    else:
        assert not out.exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_out_that_cannot_be_created_is_one_line_even_for_root(make_repo, capsys):
    good = make_repo("good")
    good.commit("one", {"a": "a\n"})
    out = "/proc/ghframes-data"  # its permission bits say writable to root; mkdir still fails
    assert crawl(str(good.path), "--out", out) == 2
    assert capsys.readouterr().err == (
        f"ghframes: error: {out}: not writable (No such file or directory)\n"
    )


def test_github_sources_and_discovery_through_the_api(make_repo, tmp_path, capsys):
    from fakegithub import paginated, repo_obj, serve

    token = "ghp_SecretThatMustNotLeak000000000000000"
    bare = {}
    for name in ("tool", "lib", "old"):
        r = make_repo(f"src-{name}")
        r.commit(f"{name} one", {f"{name}.py": f"{name} = 1\n"})
        r.commit(f"{name} two", {f"{name}.py": f"{name} = 2\n"})
        bare[name] = tmp_path / f"{name}.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(r.path), str(bare[name])], check=True)

    def obj(name: str, **kw) -> dict:
        return repo_obj(f"acme/{name}", **kw) | {"clone_url": f"file://{bare[name]}"}

    data = tmp_path / "data"
    with serve() as fake:
        fake.routes["/repos/acme/tool"] = lambda seen: Reply(200, obj("tool"))
        fake.routes["/orgs/acme/repos"] = paginated(
            fake, [obj("tool"), obj("lib", license="Apache-2.0"), obj("old", archived=True)]
        )
        env = {"GITHUB_TOKEN": token}
        code = crawl(
            "acme/tool", "--org", "acme", "--api-url", fake.url, "--out", str(data), env=env
        )
        assert all(s.headers.get("authorization") == f"Bearer {token}" for s in fake.seen)
    out, err = capsys.readouterr()
    assert code == 0, err
    repos = edits_manifest(data)["repos"]
    assert sorted(e["repo"] for e in repos.values()) == [
        "github.com/acme/lib",
        "github.com/acme/tool",
    ]
    lib = next(e for e in repos.values() if e["repo"] == "github.com/acme/lib")
    assert lib["metadata"]["license"] == "Apache-2.0" and lib["commits"] == 2
    assert "discovery: skipped 1 repositories (archived)" in err
    # The token appears nowhere: not in output, nor in any file written.
    assert token not in out + err
    for path in data.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_a_task_that_dies_of_something_unforeseen_fails_only_its_repository(make_repo, tmp_path):
    from ghframes.crawl.sources import parse_source
    from ghframes.pipelines.crawl import CrawlOptions
    from ghframes.pipelines.crawl import crawl as run_crawl

    good = make_repo("good")
    good.commit("one", {"a.py": "x = 1\n"})
    url = f"file://{good.path}"
    # A mirror cache that is not a folder name: only the URL source uses it, and its TypeError
    # inside that source's task stands for any bug the crawl did not foresee.
    options = CrawlOptions(cache_dir=7)
    data = tmp_path / "data"
    run_crawl([parse_source(str(good.path)), parse_source(url)], str(data), options, progress=False)
    repos = {e["kind"]: e for e in edits_manifest(data)["repos"].values()}
    assert (repos["path"]["status"], repos["path"]["commits"]) == ("ok", 1)
    assert repos["url"]["status"] == "failed"
    assert repos["url"]["error"].startswith(f"{url}: TypeError: ")
    assert "\n" not in repos["url"]["error"]


def test_local_repositories_sharing_a_folder_name_are_kept_apart(tmp_path, make_repo):
    a, b = make_repo("a/app"), make_repo("b/app")
    a.commit("in a", {"a.py": "a\n"})
    b.commit("in b", {"b.py": "b\n"})
    data = tmp_path / "data"
    assert crawl(str(a.path), str(b.path), "--out", str(data)) == 0
    assert crawl(str(b.path), "--out", str(data)) == 0
    repos = edits_manifest(data)["repos"]
    names = [parse_source(str(r.path)).repo for r in (a, b)]
    assert names[0] != names[1] and all(name.endswith("/app") for name in names)
    assert sorted((e["repo"], e["status"], e["commits"]) for e in repos.values()) == sorted(
        (name, "ok", 1) for name in names
    )
    rows = edit_rows(data).select(["repo", "message"]).to_pylist()
    assert sorted(rows, key=lambda r: r["message"]) == [
        {"repo": names[0], "message": "in a\n"},
        {"repo": names[1], "message": "in b\n"},
    ]


def test_two_folders_named_alike_are_two_repositories_to_split_by(tmp_path, make_repo, capsys):
    """`one/mirror/repo` and `two/mirror/repo`, no remotes: two `repo` names, the prompt shows
    the folder, and split_by="repo" holds one out whole."""
    from ghframes.training.loader import FrameStream

    mirrors = [make_repo(f"{side}/mirror/repo") for side in ("one", "two")]
    for side, r in zip(("one", "two"), mirrors, strict=True):
        for k in range(2):
            r.commit(f"{side} {k}", {f"{side}.py": f"x = {k}\n"})
    data = tmp_path / "data"
    assert crawl(*(str(r.path) for r in mirrors), "--out", str(data)) == 0
    names = sorted(e["repo"] for e in edits_manifest(data)["repos"].values())
    assert names[0] != names[1] and all(n.endswith("/mirror/repo") for n in names), names
    assert cli.main(["render", str(data), "--no-progress"], env={}) == 0
    capsys.readouterr()
    assert cli.main(["ls", str(data), "--json"], env={}) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted({row["repo"] for row in listed}) == names
    dataset = ghframes.open_dataset(str(data))
    repo_of = {s.id: s.repo for s in dataset.sessions()}
    first_row = dataset.session(next(iter(repo_of))).frames[0, 0]  # the prompt, not the hash
    assert "".join(chr(c) for c in first_row if c).rstrip() == "dev@ghframes:~/repo$"
    train, held = (
        FrameStream(str(data), 1, 16, split=split, eval_fraction=0.01, split_by="repo")
        for split in ("train", "eval")
    )
    sides = [{repo_of[ds.sessions[i].id] for i in ds.split_indices} for ds in (train, held)]
    assert len(sides[0]) == len(sides[1]) == 1 and sides[0] | sides[1] == set(names)


def test_progress_bars_count_repositories_then_commits(make_repo, tmp_path, capsys, monkeypatch):
    from ghframes.crawl.sources import parse_source
    from ghframes.pipelines.crawl import CrawlOptions
    from ghframes.pipelines.crawl import crawl as run_crawl

    big, small = make_repo("big"), make_repo("small")
    for k in range(130):
        big.commit(f"c{k}", {"a.py": f"x = {k}\n"})
    small.commit("one", {"b.py": "y = 1\n"})
    sources = [parse_source(str(big.path)), parse_source(str(small.path))]
    options = CrawlOptions(cache_dir=str(tmp_path / "cache"))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # bars are drawn on terminals only
    run_crawl(sources, str(tmp_path / "data"), options, progress=True)
    bars = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any(line.startswith("fetch: 100%") and "2/2" in line for line in bars), bars
    final = [line for line in bars if line.startswith("mine: 100%")]
    assert final and "131/131" in final[-1] and "repos=2/2" in final[-1], bars


@pytest.fixture
def quick_client(monkeypatch):
    """GitHub clients that retry a 5xx at once instead of backing off for seconds."""
    import functools

    from ghframes.crawl import github

    monkeypatch.setattr(
        github, "GitHubClient", functools.partial(github.GitHubClient, backoff_factor=0)
    )


def test_a_source_whose_api_lookup_fails_fails_alone(quick_client, make_repo, tmp_path, capsys):
    from fakegithub import serve

    local = make_repo("local")
    local.commit("one", {"a.py": "x = 1\n"})
    data = tmp_path / "data"
    with serve() as fake:
        fake.routes["/repos/acme/broken"] = lambda seen: Reply(500, {"message": "Server Error"})
        code = crawl(str(local.path), "acme/broken", "--api-url", fake.url, "--out", str(data))
    out, err = capsys.readouterr()
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith("ghframes: error: acme/broken: ") and "answered 500" in line, err
    repos = {e["repo"]: e for e in edits_manifest(data)["repos"].values()}
    ok = repos[parse_source(str(local.path)).repo]
    assert (ok["status"], ok["commits"]) == ("ok", 1)
    broken = repos["github.com/acme/broken"]
    assert broken["status"] == "failed" and broken["error"] == line.removeprefix(
        "ghframes: error: "
    )
    assert "crawled 1/2 repositories" in out


def test_a_failed_discovery_is_one_line_and_the_rest_are_crawled(make_repo, tmp_path, capsys):
    from fakegithub import serve

    local = make_repo("local")
    local.commit("one", {"a.py": "x = 1\n"})
    data = tmp_path / "data"
    with serve() as fake:  # every route unset: /orgs/gone/repos is a 404
        code = crawl(str(local.path), "--org", "gone", "--api-url", fake.url, "--out", str(data))
        assert crawl("--org", "gone", "--api-url", fake.url, "--out", str(data)) == 2
        out, err = capsys.readouterr()
        # again: the local source is up to date, and the discovery's failure is still exit 1
        again = crawl(str(local.path), "--org", "gone", "--api-url", fake.url, "--out", str(data))
        assert again == 1
    more, err_again = capsys.readouterr()
    assert code == 1 and more.startswith("up to date: 1 repository, 1 commits")
    line = "ghframes: error: discovery: gone: no such organisation on "
    assert [x.startswith(line) for x in err.splitlines()] == [True, True], err
    assert err_again.startswith(line) and len(err_again.splitlines()) == 1, err_again
    (entry,) = edits_manifest(data)["repos"].values()
    assert (entry["repo"], entry["status"]) == (parse_source(str(local.path)).repo, "ok")
    assert "crawled 1/1 repositories" in out
