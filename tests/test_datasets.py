"""DATA/edits and DATA/frames as Parquet datasets other tools read, and `ghframes ls DATA`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import ghframes
from conftest import crawl
from ghframes import cli
from ghframes.stats import collect
from ghframes.store import schema
from ghframes.store.sessions import read_sessions_table


@pytest.fixture
def data(tmp_path, make_repo, ray_local) -> Path:
    """Two small repositories crawled and rendered into tmp_path/data."""
    for name, commits in (("alpha", 3), ("beta", 2)):
        repo = make_repo(name)
        for k in range(commits):
            repo.commit(
                f"step {k}", {f"{name}.txt": "".join(f"{name} {i}\n" for i in range(k + 1))}
            )
    out = tmp_path / "data"
    assert crawl(str(tmp_path / "alpha"), str(tmp_path / "beta"), "--out", str(out)) == 0
    assert cli.main(["render", str(out), "--no-progress"], env={}) == 0
    return out


def _manifest(data: Path, stage: str) -> dict:
    return json.loads((data / stage / "_manifest.json").read_text())


def _rows_of_shards(folder: Path, names) -> int:
    return sum(pq.read_metadata(folder / name).num_rows for name in names)


def test_edits_and_frames_read_as_datasets_with_no_arguments(data):
    edits = _manifest(data, "edits")
    edit_rows = _rows_of_shards(
        data / "edits", [s for e in edits["repos"].values() for s in e["shards"]]
    )
    frames = _manifest(data, "frames")
    chunk_rows = _rows_of_shards(data / "frames", [s["shard"] for s in frames["sessions"].values()])
    assert edit_rows > 0 and chunk_rows > 0
    assert pq.read_table(data / "edits").num_rows == edit_rows
    assert pads.dataset(data / "edits", format="parquet").count_rows() == edit_rows
    assert pq.read_table(data / "frames").num_rows == chunk_rows
    table = pads.dataset(data / "frames", format="parquet").to_table()
    assert table.num_rows == chunk_rows
    assert set(table.column_names) == set(schema.load("frames").names)
    import duckdb
    import pandas
    import polars

    assert len(pandas.read_parquet(data / "edits")) == edit_rows
    assert len(pandas.read_parquet(data / "frames")) == chunk_rows
    # Polars takes a folder only when every file in it is Parquet: a glob, as for DuckDB
    assert len(polars.read_parquet(data / "edits" / "*" / "*.parquet")) == edit_rows
    assert (
        polars.scan_parquet(data / "frames" / "*" / "*.parquet")
        .select(polars.len())
        .collect()
        .item()
        == chunk_rows
    )
    sql = f"SELECT count(*) FROM read_parquet('{data}/frames/*/*.parquet')"
    assert duckdb.sql(sql).fetchall()[0][0] == chunk_rows


def _readme_block(marker: str) -> str:
    """The README's Python block that starts with `marker`."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    start = text.index("```python\n" + marker) + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_readmes_duckdb_query_and_chunk_decoding_run_as_written(data):
    """What the README shows other tools doing: a DuckDB query over the sessions table and the
    shards, and the 15 lines that decode a chunk's frames with zstandard and numpy alone."""
    import numpy as np

    query = _readme_block("import duckdb")
    scope = {"DATA": str(data)}
    exec(query, scope)  # noqa: S102 - the README's own code, run as a user would
    by_repo = scope["by_repo"]
    assert sorted(r[0] for r in by_repo) == sorted(
        s.repo for s in ghframes.open_dataset(str(data)).sessions()
    )
    decode = _readme_block("import numpy as np, zstandard")
    scope = {}
    exec(decode, scope)  # noqa: S102
    ds = ghframes.open_dataset(str(data))
    for info in ds.sessions():
        session = ds.session(info.id)
        table = pq.read_table(
            data / "frames" / _manifest(data, "frames")["sessions"][info.id]["shard"]
        )
        for row in table.to_pylist():
            n, first = row["num_frames"], row["first_frame"]
            got = scope["cells"](row["frames"], n, row["frame_itemsize"])
            assert np.array_equal(got, session.frames[first : first + n])
            assert np.array_equal(scope["cells"](row["fg"], n, 1), session.fg[first : first + n])


def test_the_manifests_state_files_and_sessions_table_have_names_readers_skip(data):
    names = {
        p.name for stage in ("edits", "frames") for p in (data / stage).rglob("*") if p.is_file()
    }
    assert {"_manifest.json", "_state.json", "_sessions.parquet"} <= names
    assert all(n.endswith(".parquet") or n.startswith(("_", ".")) for n in names), names


def _to_former_names(data: Path) -> None:
    """DATA as ghframes 0.1.0 left it: manifest.json, state.json, no sessions table."""
    for stage in ("edits", "frames"):
        (data / stage / "_manifest.json").rename(data / stage / "manifest.json")
    for state in (data / "edits").glob("*/_state.json"):
        state.rename(state.with_name("state.json"))
    (data / "frames" / "_sessions.parquet").unlink()


def test_a_dataset_with_the_former_names_is_read_and_a_rerun_renames_it(data, capsys):
    shards = {p: p.read_bytes() for p in (data / "frames").rglob("[!_]*.parquet")}
    table = read_sessions_table(str(data))
    stats = collect(str(data))
    _to_former_names(data)
    assert collect(str(data)) == stats
    assert [i.id for i in ghframes.open_dataset(str(data)).sessions()] == table["id"].to_pylist()
    assert read_sessions_table(str(data)).equals(table)  # built from the manifest
    assert cli.main(["verify", str(data)], env={}) == 0
    assert cli.main(["render", str(data), "--no-progress"], env={}) == 0
    frames = {p.name for p in (data / "frames").iterdir()}
    assert {"_manifest.json", "_sessions.parquet"} <= frames and "manifest.json" not in frames
    assert {p: p.read_bytes() for p in (data / "frames").rglob("[!_]*.parquet")} == shards
    assert read_sessions_table(str(data)).equals(table)
    sources = [str(data.parent / name) for name in ("alpha", "beta")]
    assert crawl(*sources, "--out", str(data)) == 0
    edits = {p.name for p in (data / "edits").rglob("*") if p.is_file()}
    assert "manifest.json" not in edits and "state.json" not in edits
    assert {"_manifest.json", "_state.json"} <= edits


def ls(*argv: str) -> int:
    return cli.main(["ls", *argv], env={})


def test_ls_lists_every_session_and_exports_them(data, tmp_path, capsys):
    sessions = _manifest(data, "frames")["sessions"]
    assert ls(str(data)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "session",
        "commits",
        "frames",
        "bytes",
        "skipped",
        "oversized",
        "repo",
    ]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(sessions)
    assert ls(str(data), "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"]: r["num_frames"] for r in rows} == {
        k: s["num_frames"] for k, s in sessions.items()
    }
    assert set(rows[0]) == set(schema.load("sessions").names)
    (repo,) = {r["repo"] for r in rows if "alpha" in r["repo"]}
    assert ls(str(data), "--repo", repo, "--json") == 0
    only = json.loads(capsys.readouterr().out)
    assert only and {r["repo"] for r in only} == {repo} and len(only) < len(rows)
    key = only[0]["key"]
    for name in (key, "alpha"):  # by its key, or by its folder (repo is local-HASH/alpha)
        assert ls(str(data), "--repo", name, "--json") == 0
        assert json.loads(capsys.readouterr().out) == only, name
    assert ls(str(data), "--repo", "alph", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
    table = read_sessions_table(str(data))
    assert ls(str(data), "--format", "csv", "-o", str(tmp_path / "s.csv")) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 's.csv'}: {len(rows)} sessions as csv\n"
    back = pacsv.read_csv(tmp_path / "s.csv")
    assert back["id"].to_pylist() == table["id"].to_pylist()
    assert back["bytes"].to_pylist() == table["bytes"].to_pylist()
    assert ls(str(data), "--format", "parquet", "-o", str(tmp_path / "s.parquet")) == 0
    assert pq.read_table(tmp_path / "s.parquet").equals(table)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["{tmp}/nope"], "{tmp}/nope: no rendered frames (run `ghframes render {tmp}/nope` first)"),
        (["{tmp}", "--format", "csv"], "ls: --format csv needs -o FILE"),
        (["{tmp}", "-o", "{tmp}/x"], "ls: -o FILE needs --format csv or parquet"),
        (
            ["{tmp}", "--json", "--format", "csv", "-o", "{tmp}/x"],
            "ls: give --json or --format, not both",
        ),
    ],
)
def test_ls_of_bad_input_is_one_line(tmp_path, capsys, argv, said):
    assert ls(*(a.format(tmp=tmp_path) for a in argv)) == 2
    assert capsys.readouterr().err == f"ghframes: error: {said.format(tmp=tmp_path)}\n"


def test_ls_follows_the_manifest_where_the_sessions_table_lists_others(data, capsys):
    manifest = _manifest(data, "frames")
    kept, dropped = sorted(manifest["sessions"])
    del manifest["sessions"][dropped]
    (data / "frames" / "_manifest.json").write_text(json.dumps(manifest))
    assert read_sessions_table(str(data))["id"].to_pylist() == [kept]
    assert ls(str(data)) == 0
    (_, line) = capsys.readouterr().out.splitlines()
    assert line.split()[0] == kept
