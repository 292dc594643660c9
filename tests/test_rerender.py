"""Re-rendering costs only what changed: a run with nothing to draw starts no Ray and leaves the
manifest as it is; after new commits, only the sessions whose own commits changed are drawn."""

from __future__ import annotations

import json

import pytest
from test_render import tiny_repo

from ghframes import cli
from ghframes.pipelines import render as pipeline
from ghframes.render.session import RenderOptions
from ghframes.sample import write_edits

OPTIONS = RenderOptions(max_frames_per_session=120)  # a few commits a session


def _history(commits: int) -> list[dict]:
    """The first `commits` commits of one file's history: a longer history extends a shorter."""
    return [row for row in tiny_repo(12) if row["commit_index"] < commits]


def _no_ray(*args, **kwargs):
    raise AssertionError("Ray was started")


def test_a_run_with_nothing_to_draw_starts_no_ray_and_says_so(
    tmp_path, ray_local, monkeypatch, capsys
):
    write_edits(tmp_path, {"local/tiny": _history(6)})
    first = pipeline.render_dataset(str(tmp_path), OPTIONS)
    manifest = tmp_path / "frames" / "_manifest.json"
    written = manifest.read_bytes()

    monkeypatch.setattr(pipeline, "init_ray", _no_ray)
    again = pipeline.render_dataset(str(tmp_path), OPTIONS)
    assert again["up_to_date"] and again["sessions"] == first["sessions"]
    assert manifest.read_bytes() == written  # not even rewritten

    max_frames = str(OPTIONS.max_frames_per_session)
    assert cli.main(["render", str(tmp_path), "--max-frames-per-session", max_frames]) == 0
    n = len(first["sessions"])
    said = capsys.readouterr()
    assert said.out.startswith(f"up to date: 1 repository, {n} sessions, ")
    assert "frames/s" not in said.err  # no progress line (its rate would be of nothing drawn)

    with pytest.raises(AssertionError, match="Ray was started"):  # other options: work to do
        pipeline.render_dataset(str(tmp_path), RenderOptions(max_frames_per_session=121))


def test_new_commits_redraw_only_the_sessions_they_change(tmp_path, ray_local):
    write_edits(tmp_path, {"local/tiny": _history(8)})
    before = pipeline.render_dataset(str(tmp_path), OPTIONS)
    assert len(before["sessions"]) >= 3
    frames = tmp_path / "frames"
    stamps = {
        sid: (frames / s["shard"]).stat().st_mtime_ns for sid, s in before["sessions"].items()
    }

    write_edits(tmp_path, {"local/tiny": _history(10)})  # the edits shard is written anew
    after = pipeline.render_dataset(str(tmp_path), OPTIONS)

    last = max(before["sessions"], key=lambda sid: before["sessions"][sid]["first_commit_index"])
    kept = set(before["sessions"]) - {last}
    for sid in kept:  # the same name, the same shard, untouched
        assert after["sessions"][sid] == before["sessions"][sid]
        assert (frames / after["sessions"][sid]["shard"]).stat().st_mtime_ns == stamps[sid]
    new = set(after["sessions"]) - kept
    assert new and max(s["last_commit_index"] for s in after["sessions"].values()) == 9
    assert after["removed"]["shards"] <= 1  # at most the last session's earlier shard
    manifest = json.loads((frames / "_manifest.json").read_text())
    assert manifest["repos"]["local/tiny"]["edits"]  # what it was rendered from, for next time
