"""The many-repositories benchmark's DATA of other repositories: real manifests that a crawl
and a render keep as they are, so that they cost the drivers only their entries."""

from __future__ import annotations

import json

from conftest import crawl
from ghframes import cli
from ghframes.bench.scale import add_other_repositories, make_repositories


def test_other_repositories_are_kept_as_they_are_by_a_crawl_and_a_render(
    tmp_path, ray_local, capsys
):
    paths = make_repositories(tmp_path / "repos", 2)
    data, among = tmp_path / "data", tmp_path / "among"
    assert crawl(*paths, "--out", str(data)) == 0
    assert cli.main(["render", str(data), "--no-progress"], env={}) == 0
    add_other_repositories(data, among, 3)
    others = {p: p.stat().st_mtime_ns for p in among.rglob("*.parquet") if p.name[0] != "_"}
    assert crawl(*paths, "--out", str(among)) == 0
    assert cli.main(["render", str(among), "--no-progress"], env={}) == 0
    capsys.readouterr()
    edits = json.loads((among / "edits" / "_manifest.json").read_text())["repos"]
    frames = json.loads((among / "frames" / "_manifest.json").read_text())
    assert len(edits) == len(frames["repos"]) == 5
    assert all(r["status"] == "ok" and not r.get("stale") for r in frames["repos"].values())
    assert len({e["root"] for e in edits.values()}) == 5  # no duplicates among them
    assert {p: p.stat().st_mtime_ns for p in others} == others  # neither mined nor drawn again
    listed = {s["shard"] for s in frames["sessions"].values()}
    assert {str(p.relative_to(among / "frames")) for p in others if "frames" in p.parts} <= listed
    assert cli.main(["render", str(among), "--no-progress"], env={}) == 0
    assert capsys.readouterr().out.startswith("up to date: 5 repositories, ")
