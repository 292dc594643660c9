"""Crawling again: only new commits are mined, rewrites and failures recover, no row twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from waiting import wait_for_files, wait_for_line

from conftest import crawl, edit_rows, edits_manifest, free_port, short_tmpdir
from ghframes import cli, sample
from ghframes.store import schema, shards

pytestmark = pytest.mark.usefixtures("ray_local")
EDITS = schema.load("edits")


def test_rerun_is_idempotent_and_mines_only_new_commits(make_repo, tmp_path):
    r = make_repo("proj")
    r.commit("one", {"a.py": "x = 1\n"})
    r.commit("two", {"a.py": "x = 2\n"})
    data = tmp_path / "data"
    assert crawl(str(r.path), "--out", str(data)) == 0
    first = edits_manifest(data)
    assert crawl(str(r.path), "--out", str(data)) == 0
    assert edits_manifest(data) == first  # nothing new: nothing written
    r.commit("three", {"b.py": "y = 3\n"})
    r.commit("four", {"a.py": "x = 4\n"})
    assert crawl(str(r.path), "--out", str(data)) == 0
    (entry,) = edits_manifest(data)["repos"].values()
    assert len(entry["shards"]) == 2 and entry["commits"] == 4
    second = shards.read_table(*_fs(data, entry["shards"][1]), EDITS)
    assert second.column("message").to_pylist() == ["three\n", "four\n"]
    assert second.column("commit_index").to_pylist() == [2, 3]
    fresh = tmp_path / "fresh"
    crawl(str(r.path), "--out", str(fresh))
    assert edit_rows(data).sort_by("commit_index").equals(edit_rows(fresh).sort_by("commit_index"))


def no_ray(*args, **kwargs):
    """What the crawl pipeline's init_ray is replaced with where Ray must not start."""
    raise AssertionError("Ray was started")


def test_a_crawl_with_nothing_new_starts_no_ray_and_says_so(
    make_repo, tmp_path, monkeypatch, capsys
):
    from ghframes.pipelines import crawl as pipeline

    r = make_repo("proj")
    r.commit("one", {"a.py": "x = 1\n"})
    r.commit("two", {"a.py": "x = 2\n"})
    data = tmp_path / "data"
    assert crawl(str(r.path), "--out", str(data)) == 0
    manifest = data / "edits" / "_manifest.json"
    written = manifest.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(pipeline, "init_ray", no_ray)
    assert crawl(str(r.path), "--out", str(data)) == 0
    assert capsys.readouterr().out == f"up to date: 1 repository, 2 commits in {data}/edits\n"
    assert manifest.read_bytes() == written
    r.commit("three", {"a.py": "x = 3\n"})  # something to mine: Ray is needed again
    with pytest.raises(AssertionError, match="Ray was started"):
        crawl(str(r.path), "--out", str(data))


def test_a_repository_crawled_under_its_old_name_is_mined_again_under_its_new_one(
    make_repo, tmp_path
):
    """DATA crawled before a local repository's name carried a hash of its location: the same
    folder under DATA/edits, its rows mined again under the new name, nothing left of the old."""
    from ghframes.crawl.sources import parse_source

    r = make_repo("proj")
    r.commit("one", {"a.py": "x = 1\n"})
    r.commit("two", {"a.py": "x = 2\n"})
    data = tmp_path / "data"
    assert crawl(str(r.path), "--out", str(data)) == 0
    (key,) = edits_manifest(data)["repos"]
    manifest, state = data / "edits" / "_manifest.json", data / "edits" / key / "_state.json"
    for path in (manifest, state):  # named as before: its folder's name only
        doc = json.loads(path.read_text())
        (doc["repos"][key] if path == manifest else doc)["repo"] = "proj"
        path.write_text(json.dumps(doc))
    assert crawl(str(r.path), "--out", str(data)) == 0
    name = parse_source(str(r.path)).repo
    assert list(edits_manifest(data)["repos"]) == [key]
    assert edits_manifest(data)["repos"][key]["repo"] == name
    assert json.loads(state.read_text())["repo"] == name
    assert set(edit_rows(data).column("repo").to_pylist()) == {name}


def _fs(data: Path, name: str):
    fs, root = shards.filesystem(str(data))
    return fs, f"{root}/edits/{name}"


@pytest.fixture
def git_daemon(tmp_path):
    """`git daemon` serving tmp_path/served on loopback; yields (base folder, port)."""
    base = tmp_path / "served"
    base.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--verbose",  # says "Ready to rumble" on stderr once it listens
            "--export-all",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={base}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    wait_for_line(proc.stderr, "Ready to rumble", "git daemon", timeout=10)
    # its log goes on (a line a connection): read it, so that the pipe never fills
    threading.Thread(target=proc.stderr.read, daemon=True).start()
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
    (entry,) = edits_manifest(data)["repos"].values()
    assert (entry["repo"], entry["commits"]) == ("127.0.0.1/proj", 1)
    r.commit("two", {"a.py": "x = 2\n"})
    r.git("push", "-q", str(base / "proj.git"), "main")
    assert crawl(url, "--out", str(data), "--cache", str(cache)) == 0
    (entry,) = edits_manifest(data)["repos"].values()
    assert entry["commits"] == 2 and len(entry["shards"]) == 2
    assert [p.name for p in cache.iterdir()] == [entry["key"] + ".git"]


def test_an_unchanged_remote_source_is_asked_not_fetched_and_starts_no_ray(
    make_repo, git_daemon, tmp_path, monkeypatch, capsys
):
    """A git:// server on loopback is asked for its heads in the driver: unchanged, the crawl
    is up to date with no Ray; moved, Ray mines only it (the local source is not mined again)."""
    from ghframes.pipelines import crawl as pipeline

    base, port = git_daemon
    work, here = make_repo("work"), make_repo("here")
    work.commit("one", {"a.py": "x = 1\n"})
    work.commit("two", {"a.py": "x = 2\n"})
    here.commit("mine", {"b.py": "y = 1\n"})
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work.path), str(base / "p.git")], check=True
    )
    args = (f"git://127.0.0.1:{port}/p.git", str(here.path), "--out", str(tmp_path / "data"))
    data, manifest = tmp_path / "data", tmp_path / "data" / "edits" / "_manifest.json"
    assert crawl(*args) == 0
    written = manifest.read_bytes()
    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "init_ray", no_ray)
        assert crawl(*args) == 0
        assert capsys.readouterr().out == f"up to date: 2 repositories, 3 commits in {data}/edits\n"
        assert manifest.read_bytes() == written
        work.commit("three", {"a.py": "x = 3\n"})
        work.git("push", "-q", str(base / "p.git"), "main")
        with pytest.raises(AssertionError, match="Ray was started"):
            crawl(*args)
    state = next((data / "edits").glob("here-*/_state.json"))
    before = state.stat().st_mtime_ns
    assert crawl(*args) == 0
    assert sorted(e["commits"] for e in edits_manifest(data)["repos"].values()) == [1, 3]
    assert state.stat().st_mtime_ns == before  # unchanged: not given to Ray at all
    assert edits_manifest(data) == json.loads(manifest.read_text())


def test_a_remote_source_whose_server_fails_fails_alone_with_no_ray(
    make_repo, tmp_path, monkeypatch, capsys
):
    """The file:// repository a crawl mined is gone: asking for its heads fails, and that is
    its one line and exit 1, the earlier rows kept (`stale`); the rest need no Ray."""
    from ghframes.pipelines import crawl as pipeline

    work, here = make_repo("work"), make_repo("here")
    work.commit("one", {"a.py": "x = 1\n"})
    here.commit("mine", {"b.py": "y = 1\n"})
    bare = tmp_path / "served" / "p.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work.path), str(bare)], check=True)
    url, data = f"file://{bare}", tmp_path / "data"
    assert crawl(url, str(here.path), "--out", str(data)) == 0
    capsys.readouterr()
    bare.rename(tmp_path / "moved.git")
    monkeypatch.setattr(pipeline, "init_ray", no_ray)
    assert crawl(url, str(here.path), "--out", str(data)) == 1
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith(f"ghframes: error: {url}: fetch failed ("), line
    entries = {e["kind"]: e for e in edits_manifest(data)["repos"].values()}
    assert entries["url"]["status"] == "failed" and entries["url"]["stale"]
    assert entries["url"]["error"] == line.removeprefix("ghframes: error: ")
    assert (entries["path"]["status"], entries["path"]["commits"]) == ("ok", 1)
    assert "crawled 1/2 repositories" in out
    assert len(edit_rows(data)) == 2  # the gone repository's rows are kept


def test_an_unchanged_github_repository_is_up_to_date_with_no_ray(
    github, make_repo, tmp_path, monkeypatch, capsys
):
    """OWNER/NAME: looked up in the API, then its default branch asked of its clone URL."""
    from fakegithub import Reply, repo_obj
    from ghframes.pipelines import crawl as pipeline

    work = make_repo("work")
    work.commit("one", {"a.py": "x = 1\n"})
    bare = tmp_path / "tool.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work.path), str(bare)], check=True)
    # the default branch the API names, not the server's HEAD, is the one crawled
    work.git("push", "-q", str(bare), "main:other")
    subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/other"], cwd=bare, check=True)
    info = repo_obj("acme/tool") | {"clone_url": f"file://{bare}"}
    github.routes["/repos/acme/tool"] = lambda seen: Reply(200, info)
    args = ("acme/tool", "--api-url", github.url, "--out", str(tmp_path / "data"))
    assert crawl(*args) == 0
    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "init_ray", no_ray)
        work.commit("elsewhere", {"a.py": "x = 2\n"})
        work.git("push", "-q", str(bare), "main:other")
        assert crawl(*args) == 0
        assert capsys.readouterr().out.startswith("up to date: 1 repository, 1 commits in ")
        work.git("push", "-q", str(bare), "main")
        with pytest.raises(AssertionError, match="Ray was started"):
            crawl(*args)


def test_one_failure_does_not_stop_the_others_and_only_it_is_retried(make_repo, tmp_path, capsys):
    good = make_repo("good")
    good.commit("one", {"a.py": "x = 1\n"})
    bad = f"git://127.0.0.1:{free_port()}/nothing.git"  # nothing listens there
    data = tmp_path / "data"
    assert crawl(str(good.path), bad, "--out", str(data)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ghframes: error: {bad}: clone failed")
    repos = edits_manifest(data)["repos"]
    assert sorted(e["status"] for e in repos.values()) == ["failed", "ok"]
    state = next((data / "edits").glob("good-*/_state.json"))
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
    (mined,) = edits_manifest(data)["repos"].values()
    before = edit_rows(data)
    served.rename(tmp_path / "moved")  # the URL no longer answers: the fetch fails
    capsys.readouterr()
    assert crawl(url, "--out", str(data), "--cache", str(cache)) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"ghframes: error: {url}: fetch failed (")
    assert "kept from an earlier run" in out and "crawled 0/1 repositories" in out
    (entry,) = edits_manifest(data)["repos"].values()
    assert (entry["status"], entry["stale"]) == ("failed", True)
    assert entry["error"] == err.removeprefix("ghframes: error: ").strip()
    same = ("shards", "commits", "changes", "bytes", "head", "root", "skipped")
    assert {k: entry[k] for k in same} == {k: mined[k] for k in same}
    assert edit_rows(data).equals(before) and before.num_rows == 3
    assert cli.main(["stats", str(data), "--json"], env={}) == 0
    stats = json.loads(capsys.readouterr().out)["edits"]
    assert (stats["commits"], stats["changes"], stats["shards"]) == (2, 3, 1)
    assert stats["by_status"] == {"failed": 1} and stats["stale"] == {url: 2}
    # Render replays the kept rows: both commits, all three changes.
    assert cli.main(["render", str(data), "--no-progress"], env={}) == 0
    frames = json.loads((data / "frames" / "_manifest.json").read_text())
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
    (entry,) = edits_manifest(data)["repos"].values()
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
    (entry,) = edits_manifest(data)["repos"].values()
    assert (entry["status"], entry["commits"]) == ("ok", 1)


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
    wait_for_files(
        data,
        lambda: bool(list((data / "edits").glob("*/_state.json"))),
        "a repository's crawl state",
        timeout=60,
    )
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray workers, mid-run
    proc.wait()
    assert not (data / "edits" / "_manifest.json").exists()
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    repos = edits_manifest(data)["repos"]
    assert len(repos) == 6 and all(e["status"] == "ok" for e in repos.values())
    for key, entry in repos.items():
        table = edit_rows(data, key)
        pairs = list(
            zip(table.column("commit").to_pylist(), table.column("path").to_pylist(), strict=True)
        )
        assert len(pairs) == len(set(pairs)) == entry["changes"]
        assert max(table.column("commit_index").to_pylist()) == entry["commits"] - 1 == 249
    assert not [p for p in (data / "edits").rglob(".*tmp-*")]


def test_rewritten_history_is_mined_again_from_the_root(make_repo, tmp_path):
    r = make_repo("proj")
    r.commit("one", {"a.py": "x = 1\n"})
    r.commit("two", {"a.py": "x = 2\n"})
    data = tmp_path / "data"
    assert crawl(str(r.path), "--out", str(data)) == 0
    (old,) = edits_manifest(data)["repos"].values()
    r.git("reset", "-q", "--hard", "HEAD~1")
    r.commit("two, rewritten", {"a.py": "x = 22\n"})
    assert crawl(str(r.path), "--out", str(data)) == 0
    (new,) = edits_manifest(data)["repos"].values()
    assert new["commits"] == 2 and new["shards"] != old["shards"]
    assert edit_rows(data).column("after").to_pylist() == ["x = 1\n", "x = 22\n"]
    on_disk = sorted(p.name for p in (data / "edits" / new["key"]).glob("*.parquet"))
    assert on_disk == sorted(name.split("/")[1] for name in new["shards"])


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
    (entry,) = edits_manifest(data)["repos"].values()
    assert entry["commits"] == 3
    assert edit_rows(data).column("message").to_pylist() == ["A\n", "S\n", "M\n"]
    assert edit_rows(data).equals(edit_rows(fresh))


def test_a_new_size_limit_mines_again_from_the_root(make_repo, tmp_path):
    r = make_repo("proj")
    r.commit("one", {"small.py": "x\n", "big.py": "y" * 100 + "\n"})
    data = tmp_path / "data"
    assert crawl(str(r.path), "--out", str(data)) == 0
    r.commit("two", {"small.py": "x = 2\n"})
    assert crawl(str(r.path), "--out", str(data), "--max-file-bytes", "50") == 0
    fresh = tmp_path / "fresh"
    assert crawl(str(r.path), "--out", str(fresh), "--max-file-bytes", "50") == 0
    (entry,) = edits_manifest(data)["repos"].values()
    assert entry["skipped"] == {"too_large": 1} and entry["changes"] == 2
    assert edit_rows(data).equals(edit_rows(fresh))


def test_a_fork_crawled_in_a_later_run_is_not_mined_again(sample_repo, tmp_path, capsys):
    fork = tmp_path / "tally-fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(sample_repo), str(fork)], check=True)
    data = tmp_path / "data"
    assert crawl(str(sample_repo), "--out", str(data)) == 0
    assert crawl(f"file://{fork}", "--out", str(data)) == 0
    # In either order, the repository an earlier run mined keeps the root.
    assert crawl(f"file://{fork}", str(sample_repo), "--out", str(data)) == 0
    entries = sorted(edits_manifest(data)["repos"].values(), key=lambda e: e["kind"])
    assert [(e["kind"], e["status"]) for e in entries] == [("path", "ok"), ("url", "duplicate")]
    assert entries[1]["duplicate_of"] == entries[0]["key"]
    assert not (data / "edits" / entries[1]["key"]).exists()
