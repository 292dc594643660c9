"""Bounds on a commit's actions and on verify's memory, whatever the length of a session."""

from __future__ import annotations

import json
import tracemalloc

from test_render import commits_from

import ghframes
from ghframes import cli
from ghframes.bench.verify import KEY, long_file, write_long_session
from ghframes.cli.render import options_from_args
from ghframes.render.commits import plan_commit
from ghframes.render.session import RenderOptions, render_session
from ghframes.render.terminal import COLS, ROWS
from ghframes.sample import write_edits
from ghframes.verify import verify_dataset


def cuts(files: int, lines: int) -> list[dict]:
    """One commit emptying `files` files of `lines` lines: one <C-k> a line, nothing typed."""
    tall = "".join(f"line {i}\n" for i in range(lines))
    return [
        {"commit_index": 0, "path": f"f{k:02d}.txt", "status": "modified", "before": tall}
        | {"after": ""}
        for k in range(files)
    ]


def test_a_commit_of_many_cuts_is_bounded_by_default():
    """30 files emptied of 20,000 lines each were one 600,000-frame commit: every change is
    within the per-change bounds, so only the commit's bound stops it. Changes past it are
    skipped and counted; those that fit are played."""
    (commit,) = commits_from(cuts(30, 20_000))
    plan = plan_commit(commit, RenderOptions())
    assert 180_000 < plan.num_actions <= RenderOptions().max_actions_per_commit == 200_000
    outcomes = [c["outcome"] for c in plan.changes]
    assert outcomes == ["rendered"] * 9 + ["commit_action_budget"] * 21
    assert plan.skipped == {"commit_action_budget": 21}


def test_commit_action_budget_in_a_session():
    """A change that would take the commit past --max-actions-per-commit is skipped, later ones
    that fit are played; the commit's frames stay within the bound, and the summary counts
    only what was played."""
    rows = cuts(3, 300) + [
        {"commit_index": 0, "path": "z.txt", "status": "added", "before": None, "after": "z\n"}
    ]
    options = RenderOptions(max_actions_per_commit=500)
    (commit,) = commits_from(rows)
    plan = plan_commit(commit, options)
    assert plan.num_actions <= 500 < plan_commit(commit, RenderOptions()).num_actions
    _, meta = render_session("local/r", commits_from(rows), options)
    assert meta["skipped"] == {"commit_action_budget": 2}
    outcomes = {c["path"]: c["outcome"] for c in meta["changes"]}
    assert outcomes == {
        "f00.txt": "rendered",
        "f01.txt": "commit_action_budget",
        "f02.txt": "commit_action_budget",
        "z.txt": "rendered",
    }
    assert meta["num_frames"] == plan.num_actions + 1  # and the prompt before it
    assert meta["options"]["max_actions_per_commit"] == 500


def test_every_option_is_part_of_a_sessions_identity():
    """The options are part of a session's identity (its shard name) and its footer. Renderer
    version 3 renamed every render, so none is left out at its default any more; an option added
    later goes into ADDED_OPTIONS, which leaves it out at its default."""
    assert sorted(RenderOptions().as_dict()) == [
        "color",
        "max_actions_per_change",
        "max_actions_per_commit",
        "max_frames_per_session",
        "max_typed_chars_per_change",
        "max_typed_chars_per_commit",
        "seed",
        "typist",
        "typo_rate",
    ]
    assert RenderOptions(max_actions_per_commit=9).as_dict()["max_actions_per_commit"] == 9
    assert RenderOptions(typist="replay", seed=3).as_dict() != RenderOptions().as_dict()


def test_render_flag_max_actions_per_commit(tmp_path, ray_local, capsys):
    parser = cli.build_parser({})
    args = parser.parse_args(["render", "d", "--max-actions-per-commit", "7"])
    assert options_from_args(args).max_actions_per_commit == 7
    default = options_from_args(parser.parse_args(["render", "d"]))
    assert default == RenderOptions()
    assert cli.main(["render", str(tmp_path), "--max-actions-per-commit", "0"]) == 2
    assert "--max-actions-per-commit must be a positive integer, got 0" in capsys.readouterr().err
    write_edits(tmp_path, {"local/cuts": cuts(3, 300)})
    argv = ["render", str(tmp_path), "--no-progress", "--max-actions-per-commit", "500"]
    assert cli.main(argv) == 0
    manifest = json.loads((tmp_path / "frames" / "_manifest.json").read_text())
    assert manifest["options"]["max_actions_per_commit"] == 500
    (summary,) = manifest["sessions"].values()
    assert summary["skipped"] == {"commit_action_budget": 2}
    assert list(verify_dataset(str(tmp_path))) == []


def test_verify_memory_stays_bounded_on_a_long_session(tmp_path):
    """verify streams: its peak (Python and numpy allocations) on a session of 30,000 frames is a
    small fraction of the frames decoded (235 MB), since it holds one chunk, one row group's
    actions and one file's editor at a time."""
    frames = write_long_session(str(tmp_path), files=3, lines=10_000)
    decoded = frames * ROWS * COLS  # bytes: the narrowest dtype of blank screens is uint8
    assert frames > 30_000
    tracemalloc.start()
    try:
        problems = list(verify_dataset(str(tmp_path)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problems == []
    assert peak < decoded / 10, f"verify peaked at {peak / 2**20:.1f} MB"


def test_verify_streams_a_change_across_row_groups(tmp_path):
    """A change whose 10,001 actions span several row groups is still replayed as one: a wrong
    new text in the edits is found, named, and only for that change."""
    write_long_session(str(tmp_path), files=2, lines=10_000)
    (info,) = ghframes.open_dataset(str(tmp_path)).sessions()
    assert list(verify_dataset(str(tmp_path))) == []
    row = {"commit_index": 0, "status": "modified", "before": long_file(10_000), "after": ""}
    rows = [dict(row, path="f00.txt"), dict(row, path="f01.txt", after="kept\n")]
    write_edits(tmp_path, {KEY: rows})
    assert list(verify_dataset(str(tmp_path), stop_at_first=False)) == [
        f"{info.id}: {'0' * 12}:f01.txt: replaying its 10001 "
        "actions does not give the file's new text"
    ]
