"""Frame shards, the render pipeline and verify: determinism, resume, exact errors.

`tiny_repo` and `commits_from` build the edit rows that test_session.py and test_loader.py use.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from waiting import wait_for_files

import ghframes
from ghframes import cli
from ghframes.render.session import RenderOptions, render_session
from ghframes.sample import write_edits
from ghframes.store.frames import frames_stats
from ghframes.verify import verify_dataset

V1 = "def main():\n\tprint('hi')\n"
V2 = "def main():\n\tprint('hello, 世界')\n\treturn 0\n"


def tiny_repo(n_commits: int = 3) -> list[dict]:
    rows = [
        {
            "commit_index": 0,
            "path": "main.py",
            "status": "added",
            "before": None,
            "after": V1,
            "mode": 0o100755,
        }
    ]
    text = V1
    for k in range(1, n_commits):
        new = text.replace("'hi'", f"'hi {k}'") + f"x{k} = {k}\r\n"
        rows.append(
            {
                "commit_index": k,
                "path": "main.py",
                "status": "modified",
                "before": text,
                "after": new,
            }
        )
        text = new
    rows.append(
        {
            "commit_index": n_commits,
            "path": "docs/my notes.md",
            "old_path": "main.py",
            "status": "renamed",
            "before": text,
            "after": text + "more\n",
        }
    )
    rows.append(
        {
            "commit_index": n_commits + 1,
            "path": "docs/my notes.md",
            "status": "deleted",
            "before": text + "more\n",
            "after": None,
        }
    )
    return rows


def commits_from(rows, repo="local/tiny"):
    import pyarrow as pa

    from ghframes.store import schema
    from ghframes.store.edits import commits_of

    full = []
    for row in rows:
        i = row["commit_index"]
        full.append(
            {
                "repo": repo,
                "commit": f"{i + 1:040x}",
                "parent": None if i == 0 else f"{i:040x}",
                "commit_index": i,
                "author_time": 0,
                "author_tz": 0,
                "message": f"Change {i}\n\nbody",
                "old_path": None,
                "mode": 0o100644,
                **row,
            }
        )
    return commits_of(pa.Table.from_pylist(full, schema=schema.load("edits").arrow))


TALL = "".join(f"line {i}\n" for i in range(2000))
EVERY_THIRD_GONE = "".join(f"line {i}\n" for i in range(2000) if i % 3)


def test_session_description_is_stored_once_in_the_footer(tmp_path):
    """The session JSON sits in the Parquet footer's key-value metadata, not a second time
    (base64) inside the stored Arrow schema."""
    import base64

    import pyarrow.parquet as pq

    from ghframes.store.frames import SESSION_KEY, read_session_metadata, write_session
    from ghframes.store.shards import filesystem

    chunks, meta = render_session("local/tiny", commits_from(tiny_repo()), RenderOptions())
    fs, root = filesystem(str(tmp_path))
    write_session(fs, f"{root}/s.parquet", "sid", chunks, meta)
    footer = pq.ParquetFile(tmp_path / "s.parquet").metadata.metadata
    stored = json.loads(footer[SESSION_KEY.encode()])
    assert stored == json.loads(json.dumps(dict(meta, session="sid")))
    assert read_session_metadata(fs, f"{root}/s.parquet") == stored
    assert SESSION_KEY.encode() not in base64.b64decode(footer[b"ARROW:schema"])


def _tree_bytes(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_pipeline_is_deterministic_idempotent_and_verifies(tmp_path, ray_local):
    from ghframes.pipelines.render import render_dataset

    big = {"commit_index": 4, "path": "big.txt", "status": "added", "before": None}
    repos = {
        "local/tiny": tiny_repo(4),
        "github.com/o/other": [*tiny_repo(2), dict(big, after="a line of words\n" * 32)],
    }
    options = RenderOptions(max_frames_per_session=400, max_typed_chars_per_change=100)
    for name in ("a", "b"):
        write_edits(tmp_path / name, repos)
        render_dataset(str(tmp_path / name), options)
    first = _tree_bytes(tmp_path / "a" / "frames")
    assert first == _tree_bytes(tmp_path / "b" / "frames") and len(first) > 2
    manifest = render_dataset(str(tmp_path / "a"), options)  # re-run: nothing re-rendered
    assert _tree_bytes(tmp_path / "a" / "frames") == first
    assert list(verify_dataset(str(tmp_path / "a"))) == []
    ds = ghframes.open_dataset(str(tmp_path / "a"))
    infos = ds.sessions()
    assert sorted(i.id for i in infos) == sorted(manifest["sessions"])
    stats = frames_stats(str(tmp_path / "a"))
    assert sum(i.num_frames for i in infos) == stats["frames"]
    # the change over the typing budget is counted in the manifest and the stats, not dropped
    assert stats["skipped_changes"] == {"change_typing_budget": 1}
    assert [s["skipped"] for s in manifest["sessions"].values() if s["skipped"]] == [
        {"change_typing_budget": 1}
    ]
    session = ds.session(infos[0].id)
    assert session.frames.shape == (infos[0].num_frames, 48, 160)
    assert (
        session.cursor.shape == (infos[0].num_frames, 2)
        and len(session.actions) == infos[0].num_frames
    )


def _shard_sizes(frames) -> dict[str, int]:
    """Session shards only (not the `_sessions.parquet` table)."""
    paths = [p for p in frames.rglob("*.parquet") if not p.name.startswith("_")]
    return {str(p.relative_to(frames)): p.stat().st_size for p in paths}


def _frames_manifest(data) -> dict:
    return json.loads((data / "frames" / "_manifest.json").read_text())


def test_rerender_with_other_options_removes_the_earlier_shards(tmp_path, ray_local, capsys):
    """Shard names hash the options: a re-render under new ones writes new shards, and the
    earlier ones (unlisted by the new manifest) are deleted with the folders they leave empty;
    nothing else is touched, inside DATA/frames or out of it."""
    from ghframes.pipelines.render import render_dataset

    frames = tmp_path / "frames"
    write_edits(tmp_path, {"local/tiny": tiny_repo(4), "github.com/o/other": tiny_repo(2)})
    assert cli.main(["render", str(tmp_path), "--no-progress"]) == 0
    first = _shard_sizes(frames)
    assert len(first) == 2 and _frames_manifest(tmp_path)["removed"] == {"shards": 0, "bytes": 0}
    (frames / "notes.txt").write_text("not a shard\n")
    # New options, and github.com/o/other gone from the edits (its edits shard stays on disk).
    write_edits(tmp_path, {"local/tiny": tiny_repo(4)})
    edits = _tree_bytes(tmp_path / "edits")
    capsys.readouterr()
    argv = ["render", str(tmp_path), "--no-progress", "--max-frames-per-session", "200"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    manifest = _frames_manifest(tmp_path)
    second = _shard_sizes(frames)
    assert set(second) == {s["shard"] for s in manifest["sessions"].values()}
    assert len(second) > 1 and not set(first) & set(second)
    assert all(s["bytes"] == second[s["shard"]] for s in manifest["sessions"].values())
    assert manifest["removed"] == {"shards": 2, "bytes": sum(first.values())}
    assert f"removed 2 shards ({sum(first.values()):,} bytes) of earlier renders" in out
    (tiny_folder,) = {name.split("/")[0] for name in second}
    assert {p.name for p in frames.iterdir()} == {
        "_manifest.json",
        "_sessions.parquet",
        "notes.txt",
        tiny_folder,
    }
    assert _tree_bytes(tmp_path / "edits") == edits and len(edits) == 2
    assert manifest["repos"]["local/tiny"].pop("edits")  # the edits it was rendered from
    assert manifest["repos"] == {
        "local/tiny": {
            "repo": "local/tiny",
            "status": "ok",
            "sessions": sorted(manifest["sessions"]),
        }
    }
    assert cli.main(["verify", str(tmp_path)]) == 0
    # The same options again: every shard is listed, nothing removed.
    again = render_dataset(str(tmp_path), RenderOptions(max_frames_per_session=200))
    assert again["removed"] == {"shards": 0, "bytes": 0} and _shard_sizes(frames) == second


def test_a_repository_that_fails_keeps_its_earlier_sessions(tmp_path, ray_local, capsys):
    """A repository whose edits shard is damaged between two renders fails the second one,
    which exits 1 naming it, but the sessions the first rendered stay listed (`stale`), on disk
    and readable; the other repository is re-rendered and verifies. Once repaired, it renders
    again and its earlier shards go."""
    repos = {"local/tiny": tiny_repo(4), "github.com/o/other": tiny_repo(2)}
    write_edits(tmp_path, repos)
    assert cli.main(["render", str(tmp_path), "--no-progress"]) == 0
    kept = {
        k: s for k, s in _frames_manifest(tmp_path)["sessions"].items() if s["key"] == "local/tiny"
    }
    (name,) = json.loads((tmp_path / "edits" / "_manifest.json").read_text())["repos"][
        "local/tiny"
    ]["shards"]
    damaged = tmp_path / "edits" / name
    damaged.write_bytes(damaged.read_bytes()[:100])
    capsys.readouterr()
    for size in ("200", "300"):  # failing again keeps what the first render made
        argv = ["render", str(tmp_path), "--no-progress", "--max-frames-per-session", size]
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(
            f"ghframes: error: local/tiny: GhframesError: {damaged}: damaged shard ("
        )
        assert err.endswith("; kept 1 session from an earlier render\n") and err.count("\n") == 1
        manifest = _frames_manifest(tmp_path)
        status = manifest["repos"]["local/tiny"]
        assert (status["status"], status["stale"], status["sessions"]) == (
            "failed",
            True,
            list(kept),
        )
        assert status["error"] in err
        assert {k: manifest["sessions"][k] for k in kept} == kept
        other = [s for s in manifest["sessions"].values() if s["key"] == "github.com/o/other"]
        assert len(other) > 1 and manifest["repos"]["github.com/o/other"]["status"] == "ok"
        on_disk = _shard_sizes(tmp_path / "frames")
        assert set(on_disk) == {s["shard"] for s in manifest["sessions"].values()}
    ds = ghframes.open_dataset(str(tmp_path))
    for sid, info in kept.items():
        assert ds.session(sid).frames.shape == (info["num_frames"], 48, 160)
    rest = [arg for i in ds.sessions() if i.key != "local/tiny" for arg in ("--session", i.id)]
    assert cli.main(["verify", str(tmp_path), *rest]) == 0
    assert cli.main(["verify", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("ghframes: mismatch: local/tiny: not rendered (")
    # Repaired: rendered under the new options, no longer stale, the earlier shard removed.
    write_edits(tmp_path, repos)
    assert (
        cli.main(["render", str(tmp_path), "--no-progress", "--max-frames-per-session", "300"]) == 0
    )
    manifest = _frames_manifest(tmp_path)
    assert manifest["repos"]["local/tiny"].pop("edits")
    assert manifest["repos"]["local/tiny"] == {
        "repo": "local/tiny",
        "status": "ok",
        "sessions": sorted(k for k, s in manifest["sessions"].items() if s["key"] == "local/tiny"),
    }
    assert manifest["removed"]["shards"] == 1
    assert set(_shard_sizes(tmp_path / "frames")) == {
        s["shard"] for s in manifest["sessions"].values()
    }
    assert not {s["shard"] for s in kept.values()} & set(_shard_sizes(tmp_path / "frames"))
    assert cli.main(["verify", str(tmp_path)]) == 0


def test_a_repository_the_crawl_lost_keeps_its_earlier_sessions(tmp_path, ray_local):
    """A repository the edits list as failed with no shards (a crawl that kept nothing) has
    nothing to render; the sessions an earlier render made of it stay, `stale`."""
    from ghframes.pipelines.render import render_dataset

    write_edits(tmp_path, {"local/tiny": tiny_repo(2), "local/t2": tiny_repo(3)})
    earlier = render_dataset(str(tmp_path), RenderOptions())["sessions"]
    edits = json.loads((tmp_path / "edits" / "_manifest.json").read_text())
    edits["repos"]["local/tiny"].update(status="failed", error="gone: fetch failed", shards=[])
    (tmp_path / "edits" / "_manifest.json").write_text(json.dumps(edits))
    manifest = render_dataset(str(tmp_path), RenderOptions(max_frames_per_session=200))
    kept = {k: s for k, s in earlier.items() if s["key"] == "local/tiny"}
    assert manifest["repos"]["local/tiny"] == {
        "repo": "local/tiny",
        "status": "failed",
        "error": "no edits to render (crawl: gone: fetch failed)",
        "sessions": list(kept),
        "stale": True,
    }
    assert {k: manifest["sessions"][k] for k in kept} == kept
    assert manifest["removed"]["shards"] == 1  # local/t2's, rendered again under the new options
    assert set(_shard_sizes(tmp_path / "frames")) == {
        s["shard"] for s in manifest["sessions"].values()
    }


def test_a_failed_render_keeps_the_sessions_it_finished_for_the_next_run(tmp_path, ray_local):
    """A session that cannot be published (a folder sits at its shard's name) fails its
    repository: the manifest keeps the earlier render of it whole, and the session of the new
    render that did finish stays on disk, unlisted, so that the next run reuses it."""
    from ghframes.pipelines.render import plan_repo, render_dataset

    write_edits(tmp_path, {"local/tiny": tiny_repo(4)})
    earlier = render_dataset(str(tmp_path), RenderOptions())["sessions"]
    options = RenderOptions(max_frames_per_session=200)
    entry = json.loads((tmp_path / "edits" / "_manifest.json").read_text())["repos"]["local/tiny"]
    finished, blocked, *_ = plan_repo(str(tmp_path), "local/tiny", entry, options)["sessions"]
    frames = tmp_path / "frames"
    (frames / blocked["shard"]).mkdir()
    manifest = render_dataset(str(tmp_path), options)
    status = manifest["repos"]["local/tiny"]
    assert (status["status"], status["stale"]) == ("failed", True) and "Error" in status["error"]
    assert manifest["sessions"] == earlier and manifest["removed"] == {"shards": 0, "bytes": 0}
    (earlier_shard,) = (s["shard"] for s in earlier.values())
    assert set(_shard_sizes(frames)) >= {earlier_shard, finished["shard"]}
    written = (frames / finished["shard"]).stat().st_mtime_ns
    (frames / blocked["shard"]).rmdir()
    manifest = render_dataset(str(tmp_path), options)
    assert manifest["repos"]["local/tiny"]["status"] == "ok"
    assert (frames / finished["shard"]).stat().st_mtime_ns == written  # not drawn again
    assert manifest["removed"]["shards"] == 1 and not (frames / earlier_shard).exists()
    assert set(_shard_sizes(frames)) == {s["shard"] for s in manifest["sessions"].values()}
    assert list(verify_dataset(str(tmp_path))) == []


def test_verify_names_session_commit_and_path(tmp_path, ray_local, capsys):
    from ghframes.pipelines.render import render_dataset

    write_edits(tmp_path, {"local/tiny": tiny_repo(2)})
    render_dataset(str(tmp_path), RenderOptions())
    rows = tiny_repo(2)
    rows[1]["after"] = rows[1]["after"] + "tampered\n"
    rows[2]["after"] = rows[2]["after"] + "tampered\n"
    write_edits(tmp_path, {"local/tiny": rows})
    assert cli.main(["verify", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ghframes: mismatch: local_tiny-" in err
    assert f"{2:040x}"[:12] + ":main.py: replaying its" in err
    assert cli.main(["verify", str(tmp_path), "--all"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[1].endswith(
        ":docs/my notes.md: replaying its 9 actions does not give the file's new text"
    )
    # an edit row the session does not list (neither rendered nor counted as skipped)
    rows = [*tiny_repo(2), {"commit_index": 1, "path": "extra.txt", "status": "added"}]
    rows[-1].update(before=None, after="x\n")
    write_edits(tmp_path, {"local/tiny": rows})
    assert cli.main(["verify", str(tmp_path)]) == 1
    assert capsys.readouterr().err.endswith(":extra.txt: change missing from the session\n")


def test_action_budget_and_oversized_sessions_are_recorded(tmp_path, ray_local, capsys):
    """Through `ghframes render`: a change over --max-actions-per-change is skipped with its
    reason, and a commit larger than --max-frames-per-session is a session of its own flagged
    `oversized`; both reach the session metadata, the manifest and `ghframes stats`, and the
    result verifies."""
    table = "".join(f"row {i}\n" for i in range(60))  # about 400 keys: one commit over 300 frames
    a = {"path": "a.txt", "before": None, "after": "a\n"}
    rows = [
        dict(a, commit_index=0, status="added"),
        dict(a, commit_index=1, status="modified", before="a\n", after="ab\n"),
        # 2,000 keys, none typed: over --max-actions-per-change 1000
        dict(
            a,
            commit_index=1,
            status="modified",
            path="walk.txt",
            before=TALL,
            after=EVERY_THIRD_GONE,
        ),
        dict(a, commit_index=2, status="added", path="table.txt", after=table),
    ]
    write_edits(tmp_path, {"local/cuts": rows})
    argv = ["render", str(tmp_path), "--no-progress", "--max-actions-per-change", "1000"]
    assert cli.main([*argv, "--max-frames-per-session", "300"]) == 0
    assert capsys.readouterr().out.startswith("rendered 2 sessions, ")
    manifest = json.loads((tmp_path / "frames" / "_manifest.json").read_text())
    assert manifest["options"]["max_actions_per_change"] == 1000
    summaries = sorted(manifest["sessions"].values(), key=lambda s: s["first_commit_index"])
    assert [(s["num_commits"], s["oversized"]) for s in summaries] == [(2, False), (1, True)]
    assert [s["skipped"] for s in summaries] == [{"change_action_budget": 1}, {}]
    assert summaries[0]["num_frames"] <= 300 < summaries[1]["num_frames"]
    ds = ghframes.open_dataset(str(tmp_path))
    first, second = (ds.session(i.id).metadata for i in ds.sessions())
    assert first["oversized"] is False and second["oversized"] is True
    outcomes = {c["path"]: c["outcome"] for c in first["changes"]}
    assert outcomes == {"a.txt": "rendered", "walk.txt": "change_action_budget"}
    assert all(
        c["editor_actions"] <= 1000
        for meta in (first, second)
        for c in meta["changes"]
        if "editor_actions" in c
    )
    assert list(verify_dataset(str(tmp_path))) == []
    assert cli.main(["verify", str(tmp_path)]) == 0
    capsys.readouterr()
    assert cli.main(["stats", str(tmp_path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["frames"]
    assert stats["skipped_changes"] == {"change_action_budget": 1}
    assert stats["oversized_sessions"] == 1
    assert cli.main(["stats", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"change_action_budget\s+1\n", out)
    assert re.search(r"oversized_sessions\s+1\n", out)


def test_render_without_edits_is_one_clear_error(tmp_path, capsys):
    assert cli.main(["render", str(tmp_path), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"ghframes: error: {tmp_path}: no edits (run `ghframes crawl ... --out {tmp_path}` first)\n"
    )
    assert cli.main(["render", str(tmp_path), "--max-frames-per-session", "0"]) == 2
    assert "--max-frames-per-session must be a positive integer, got 0" in capsys.readouterr().err
    assert cli.main(["render", str(tmp_path), "--max-actions-per-change", "0"]) == 2
    assert "--max-actions-per-change must be a positive integer, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_render_resumes_with_every_session_once(tmp_path):
    from ghframes.realistic import realistic_history

    rows = [
        {k: r[k] for k in ("commit_index", "path", "status", "before", "after")}
        for c in realistic_history(6, 2)
        for r in c
    ]
    write_edits(tmp_path, {"github.com/bench/history": rows, "local/tiny": tiny_repo(3)})
    command = [
        sys.executable,
        "-m",
        "ghframes",
        "render",
        str(tmp_path),
        "--num-cpus",
        "1",
        "--no-progress",
        "--max-frames-per-session",
        "1500",
    ]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    proc = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    frames_dir = tmp_path / "frames"
    wait_for_files(
        frames_dir,
        lambda: len(list(frames_dir.rglob("[!_]*.parquet"))) >= 2,
        "two published session shards",
        timeout=120,
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list(frames_dir.rglob("[!_]*.parquet")))
    assert partial >= 2 and not (frames_dir / "_manifest.json").exists()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ds = ghframes.open_dataset(str(tmp_path))
    ids = [i.id for i in ds.sessions()]
    assert len(ids) == len(set(ids)) == len(list(frames_dir.rglob("[!_]*.parquet"))) > partial
    commits = sorted(
        (i.key, c)
        for i in ds.sessions()
        for c in range(i.first_commit_index, i.last_commit_index + 1)
    )
    assert len(commits) == len(set(commits))
    assert list(verify_dataset(str(tmp_path))) == []


def test_stats_on_edits_written_without_a_crawl(tmp_path, capsys):
    """write_edits (benchmarks, tests) records what the crawl records: stats reads it."""
    write_edits(tmp_path, {"local/tiny": tiny_repo(2)})
    assert cli.main(["stats", str(tmp_path)]) == 0
    size = sum(p.stat().st_size for p in (tmp_path / "edits").glob("*.parquet"))
    assert re.search(rf"bytes\s+{size:,}\n", capsys.readouterr().out)
