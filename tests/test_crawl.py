"""The crawl command end to end on real repositories, a real git server and a real Ray."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import short_tmpdir
from fakegithub import Reply
from ghframes import cli, sample
from ghframes.store import schema, shards

pytestmark = pytest.mark.usefixtures("ray_local")
EDITS = schema.load("edits")


def crawl(*argv: str, env: dict | None = None) -> int:
    return cli.main(["crawl", *argv, "--no-progress"], env=env or {})


def manifest(data: Path) -> dict:
    return json.loads((data / "edits" / "manifest.json").read_text())


def rows(data: Path, key: str | None = None) -> pa.Table:
    fs, _ = shards.filesystem(str(data))
    tables = [
        shards.read_table(fs, str(data / "edits" / name), EDITS)
        for k, entry in manifest(data)["repos"].items()
        if key in (None, k)
        for name in entry["shards"]
    ]
    return pa.concat_tables(tables) if tables else EDITS.arrow.empty_table()


def test_crawls_the_sample_repository(sample_repo, tmp_path, capsys):
    data = tmp_path / "data"
    assert crawl(str(sample_repo), "--out", str(data)) == 0
    (entry,) = manifest(data)["repos"].values()
    assert entry["status"] == "ok" and entry["repo"] == "tally"
    assert entry["commits"] == 18  # 20 commits, 2 of them only on the merged branch
    assert entry["skipped"] == {"binary": 1, "not_utf8": 1, "symlink": 1, "vendored": 1}
    table = rows(data)
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
    assert "ok        tally: 18 commits" in capsys.readouterr().out


def test_stats_reports_counts(sample_repo, tmp_path, capsys):
    data = tmp_path / "data"
    crawl(str(sample_repo), "--out", str(data))
    capsys.readouterr()
    assert cli.main(["stats", str(data), "--json"], env={}) == 0
    stats = json.loads(capsys.readouterr().out)["edits"]
    assert stats["repositories"] == 1 and stats["commits"] == 18
    assert stats["changes"] == rows(data).num_rows
    assert stats["skipped"]["binary"] == 1


def test_output_is_deterministic(sample_repo, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert crawl(str(sample_repo), "--out", str(a)) == 0
    assert crawl(str(sample_repo), "--out", str(b)) == 0
    names = sorted(p.relative_to(a) for p in (a / "edits").rglob("*.parquet"))
    assert names and names == sorted(p.relative_to(b) for p in (b / "edits").rglob("*.parquet"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_rerun_is_idempotent_and_mines_only_new_commits(make_repo, tmp_path):
    r = make_repo("proj")
    r.commit("one", {"a.py": "x = 1\n"})
    r.commit("two", {"a.py": "x = 2\n"})
    data = tmp_path / "data"
    assert crawl(str(r.path), "--out", str(data)) == 0
    first = manifest(data)
    assert crawl(str(r.path), "--out", str(data)) == 0
    assert manifest(data) == first  # nothing new: nothing written
    r.commit("three", {"b.py": "y = 3\n"})
    r.commit("four", {"a.py": "x = 4\n"})
    assert crawl(str(r.path), "--out", str(data)) == 0
    (entry,) = manifest(data)["repos"].values()
    assert len(entry["shards"]) == 2 and entry["commits"] == 4
    second = shards.read_table(*_fs(data, entry["shards"][1]), EDITS)
    assert second.column("message").to_pylist() == ["three\n", "four\n"]
    assert second.column("commit_index").to_pylist() == [2, 3]
    fresh = tmp_path / "fresh"
    crawl(str(r.path), "--out", str(fresh))
    assert rows(data).sort_by("commit_index").equals(rows(fresh).sort_by("commit_index"))


def _fs(data: Path, name: str):
    fs, root = shards.filesystem(str(data))
    return fs, f"{root}/edits/{name}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def git_daemon(tmp_path):
    """`git daemon` serving tmp_path/served on loopback; yields (base folder, port)."""
    base = tmp_path / "served"
    base.mkdir()
    port = _free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={base}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield base, port
    proc.terminate()
    proc.wait(timeout=10)


def test_clones_over_git_protocol_and_fetches_incrementally(make_repo, git_daemon, tmp_path):
    base, port = git_daemon
    r = make_repo("work")
    r.commit("one", {"a.py": "x = 1\n"})
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(r.path), str(base / "proj.git")], check=True
    )
    url = f"git://127.0.0.1:{port}/proj.git"
    data, cache = tmp_path / "data", tmp_path / "cache"
    assert crawl(url, "--out", str(data), "--cache", str(cache)) == 0
    (entry,) = manifest(data)["repos"].values()
    assert (entry["repo"], entry["commits"]) == ("127.0.0.1/proj", 1)
    r.commit("two", {"a.py": "x = 2\n"})
    r.git("push", "-q", str(base / "proj.git"), "main")
    assert crawl(url, "--out", str(data), "--cache", str(cache)) == 0
    (entry,) = manifest(data)["repos"].values()
    assert entry["commits"] == 2 and len(entry["shards"]) == 2
    assert [p.name for p in cache.iterdir()] == [entry["key"] + ".git"]


def test_a_fork_sharing_the_root_commit_is_mined_once(sample_repo, tmp_path, capsys):
    fork = tmp_path / "tally-fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(sample_repo), str(fork)], check=True)
    data = tmp_path / "data"
    assert crawl(str(sample_repo), f"file://{fork}", "--out", str(data)) == 0
    entries = sorted(manifest(data)["repos"].values(), key=lambda e: e["kind"])
    assert [(e["kind"], e["status"]) for e in entries] == [("path", "ok"), ("url", "duplicate")]
    assert entries[1]["duplicate_of"] == entries[0]["key"] and not entries[1]["shards"]
    assert "same root commit" in capsys.readouterr().out


def test_one_failure_does_not_stop_the_others_and_only_it_is_retried(make_repo, tmp_path, capsys):
    good = make_repo("good")
    good.commit("one", {"a.py": "x = 1\n"})
    bad = f"git://127.0.0.1:{_free_port()}/nothing.git"  # nothing listens there
    data = tmp_path / "data"
    assert crawl(str(good.path), bad, "--out", str(data)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ghframes: error: {bad}: clone failed")
    repos = manifest(data)["repos"]
    assert sorted(e["status"] for e in repos.values()) == ["failed", "ok"]
    state = next((data / "edits").glob("good-*/state.json"))
    before = state.stat().st_mtime_ns
    assert crawl(str(good.path), bad, "--out", str(data)) == 1
    assert state.stat().st_mtime_ns == before  # the good repository was not mined again


def test_a_failing_recrawl_keeps_the_rows_an_earlier_run_mined(make_repo, tmp_path, capsys):
    r = make_repo("work")
    r.commit("one", {"a.py": "x = 1\n"})
    r.commit("two", {"a.py": "x = 2\n", "b.py": "y = 1\n"})
    served = tmp_path / "served"
    subprocess.run(["git", "clone", "-q", "--bare", str(r.path), str(served)], check=True)
    url = f"file://{served}"
    data, cache = tmp_path / "data", tmp_path / "cache"
    assert crawl(url, "--out", str(data), "--cache", str(cache)) == 0
    (mined,) = manifest(data)["repos"].values()
    before = rows(data)
    served.rename(tmp_path / "moved")  # the URL no longer answers: the fetch fails
    capsys.readouterr()
    assert crawl(url, "--out", str(data), "--cache", str(cache)) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"ghframes: error: {url}: fetch failed (")
    assert "kept from an earlier run" in out and "crawled 0/1 repositories" in out
    (entry,) = manifest(data)["repos"].values()
    assert (entry["status"], entry["stale"]) == ("failed", True)
    assert entry["error"] == err.removeprefix("ghframes: error: ").strip()
    same = ("shards", "commits", "changes", "bytes", "head", "root", "skipped")
    assert {k: entry[k] for k in same} == {k: mined[k] for k in same}
    assert rows(data).equals(before) and before.num_rows == 3
    assert cli.main(["stats", str(data), "--json"], env={}) == 0
    stats = json.loads(capsys.readouterr().out)["edits"]
    assert (stats["commits"], stats["changes"], stats["shards"]) == (2, 3, 1)
    assert stats["by_status"] == {"failed": 1} and stats["stale"] == {url: 2}
    # Render replays the kept rows: both commits, all three changes.
    assert cli.main(["render", str(data), "--no-progress"], env={}) == 0
    frames = json.loads((data / "frames" / "manifest.json").read_text())
    (session,) = frames["sessions"].values()
    assert (session["key"], session["num_commits"], session["num_changes"]) == (
        entry["key"],
        2,
        3,
    )
    # Back online with a new commit: mined on from where the kept rows end, no longer stale.
    (tmp_path / "moved").rename(served)
    r.commit("three", {"b.py": "y = 2\n"})
    r.git("push", "-q", str(served), "main")
    assert crawl(url, "--out", str(data), "--cache", str(cache)) == 0
    (entry,) = manifest(data)["repos"].values()
    assert (entry["status"], entry["commits"], "stale" in entry) == ("ok", 3, False)
    assert entry["shards"][0] == mined["shards"][0] and len(entry["shards"]) == 2


def test_a_killed_clones_leftover_is_removed_when_the_mirror_is_cloned(make_repo, tmp_path):
    from ghframes.crawl.sources import HOST, parse_source

    r = make_repo("work")
    r.commit("one", {"a.py": "x = 1\n"})
    url = f"file://{r.path}"
    cache = tmp_path / "cache"
    mirror = cache / f"{parse_source(url).key}.git"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a finished process: its pid names no live clone
    leftover = Path(f"{mirror}.partial-{HOST}-{dead.pid}")
    (leftover / "objects").mkdir(parents=True)
    (leftover / "objects" / "half.pack").write_bytes(b"PACK")
    data = tmp_path / "data"
    assert crawl(url, "--out", str(data), "--cache", str(cache)) == 0
    assert not leftover.exists()
    assert [p.name for p in cache.iterdir()] == [mirror.name]
    (entry,) = manifest(data)["repos"].values()
    assert (entry["status"], entry["commits"]) == ("ok", 1)


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


def test_killed_crawl_rerun_ends_with_every_row_exactly_once(tmp_path):
    sources = []
    for i in range(6):
        path = tmp_path / f"repo{i}.git"
        sample.build_synthetic(str(path), num_commits=250, seed=i)
        sources.append(str(path))
    data = tmp_path / "data"
    cmd = [
        sys.executable,
        "-m",
        "ghframes",
        "crawl",
        *sources,
        "--out",
        str(data),
        "--num-cpus",
        "2",
        "--no-progress",
    ]
    env = dict(os.environ, RAY_TMPDIR=short_tmpdir())
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not list((data / "edits").glob("*/state.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray workers, mid-run
    proc.wait()
    assert not (data / "edits" / "manifest.json").exists()
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    repos = manifest(data)["repos"]
    assert len(repos) == 6 and all(e["status"] == "ok" for e in repos.values())
    for key, entry in repos.items():
        table = rows(data, key)
        pairs = list(
            zip(table.column("commit").to_pylist(), table.column("path").to_pylist(), strict=True)
        )
        assert len(pairs) == len(set(pairs)) == entry["changes"]
        assert max(table.column("commit_index").to_pylist()) == entry["commits"] - 1 == 249
    assert not [p for p in (data / "edits").rglob(".*tmp-*")]


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
    repos = manifest(data)["repos"]
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


def test_rewritten_history_is_mined_again_from_the_root(make_repo, tmp_path):
    r = make_repo("proj")
    r.commit("one", {"a.py": "x = 1\n"})
    r.commit("two", {"a.py": "x = 2\n"})
    data = tmp_path / "data"
    assert crawl(str(r.path), "--out", str(data)) == 0
    (old,) = manifest(data)["repos"].values()
    r.git("reset", "-q", "--hard", "HEAD~1")
    r.commit("two, rewritten", {"a.py": "x = 22\n"})
    assert crawl(str(r.path), "--out", str(data)) == 0
    (new,) = manifest(data)["repos"].values()
    assert new["commits"] == 2 and new["shards"] != old["shards"]
    assert rows(data).column("after").to_pylist() == ["x = 1\n", "x = 22\n"]
    on_disk = sorted(p.name for p in (data / "edits" / new["key"]).glob("*.parquet"))
    assert on_disk == sorted(name.split("/")[1] for name in new["shards"])


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
    repos = {e["kind"]: e for e in manifest(data)["repos"].values()}
    assert (repos["path"]["status"], repos["path"]["commits"]) == ("ok", 1)
    assert repos["url"]["status"] == "failed"
    assert repos["url"]["error"].startswith(f"{url}: TypeError: ")
    assert "\n" not in repos["url"]["error"]


def test_an_old_head_merged_in_from_a_side_branch_is_mined_again(make_repo, tmp_path):
    r = make_repo("proj")
    r.commit("A", {"a.py": "a\n"})
    r.commit("B", {"b.py": "b\n"})
    data = tmp_path / "data"
    assert crawl(str(r.path), "--out", str(data)) == 0
    # The branch moves to a merge whose first parent is a side branch: the old head B is
    # reachable, but no longer on the first-parent history (A, S, M).
    r.git("checkout", "-q", "-b", "side", "HEAD~1")
    r.commit("S", {"s.py": "s\n"})
    r.git("merge", "-q", "--no-ff", "-m", "M", "main")
    r.git("checkout", "-q", "main")
    r.git("reset", "-q", "--hard", "side")
    assert crawl(str(r.path), "--out", str(data)) == 0
    fresh = tmp_path / "fresh"
    assert crawl(str(r.path), "--out", str(fresh)) == 0
    (entry,) = manifest(data)["repos"].values()
    assert entry["commits"] == 3
    assert rows(data).column("message").to_pylist() == ["A\n", "S\n", "M\n"]
    assert rows(data).equals(rows(fresh))


def test_a_new_size_limit_mines_again_from_the_root(make_repo, tmp_path):
    r = make_repo("proj")
    r.commit("one", {"small.py": "x\n", "big.py": "y" * 100 + "\n"})
    data = tmp_path / "data"
    assert crawl(str(r.path), "--out", str(data)) == 0
    r.commit("two", {"small.py": "x = 2\n"})
    assert crawl(str(r.path), "--out", str(data), "--max-file-bytes", "50") == 0
    fresh = tmp_path / "fresh"
    assert crawl(str(r.path), "--out", str(fresh), "--max-file-bytes", "50") == 0
    (entry,) = manifest(data)["repos"].values()
    assert entry["skipped"] == {"too_large": 1} and entry["changes"] == 2
    assert rows(data).equals(rows(fresh))


def test_a_fork_crawled_in_a_later_run_is_not_mined_again(sample_repo, tmp_path, capsys):
    fork = tmp_path / "tally-fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(sample_repo), str(fork)], check=True)
    data = tmp_path / "data"
    assert crawl(str(sample_repo), "--out", str(data)) == 0
    assert crawl(f"file://{fork}", "--out", str(data)) == 0
    # In either order, the repository an earlier run mined keeps the root.
    assert crawl(f"file://{fork}", str(sample_repo), "--out", str(data)) == 0
    entries = sorted(manifest(data)["repos"].values(), key=lambda e: e["kind"])
    assert [(e["kind"], e["status"]) for e in entries] == [("path", "ok"), ("url", "duplicate")]
    assert entries[1]["duplicate_of"] == entries[0]["key"]
    assert not (data / "edits" / entries[1]["key"]).exists()


def test_local_repositories_sharing_a_folder_name_are_kept_apart(tmp_path, make_repo):
    a, b = make_repo("a/app"), make_repo("b/app")
    a.commit("in a", {"a.py": "a\n"})
    b.commit("in b", {"b.py": "b\n"})
    data = tmp_path / "data"
    assert crawl(str(a.path), str(b.path), "--out", str(data)) == 0
    assert crawl(str(b.path), "--out", str(data)) == 0
    repos = manifest(data)["repos"]
    assert sorted((e["repo"], e["status"], e["commits"]) for e in repos.values()) == [
        ("app", "ok", 1),
        ("app", "ok", 1),
    ]
    assert sorted(rows(data).column("message").to_pylist()) == ["in a\n", "in b\n"]


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
