"""Mining real git histories: every kind of change becomes an exact row or a counted skip."""

from __future__ import annotations

import pygit2
import pytest

from ghframes.crawl import history


def mine_all(path, **kw):
    repo = pygit2.Repository(str(path))
    commits = history.first_parent_chain(repo, repo.head.target)
    stats = history.MiningStats()
    rows = []
    for batch in history.mine(repo, "r", commits, 0, stats, **kw):
        cols = batch.columns
        rows += [
            dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)
        ]
    return rows, stats


def test_added_modified_deleted_renamed_are_exact(make_repo):
    r = make_repo()
    c1 = r.commit("add", {"a.txt": "one\ntwo\n", "dir/b.py": "print('b')\n"})
    c2 = r.commit("edit", {"a.txt": "one\n2\n"})
    r.git("mv", "dir/b.py", "dir/c.py")
    c3 = r.commit("rename")
    c4 = r.commit("delete", {"a.txt": None})
    rows, stats = mine_all(r.path)
    got = [(row["commit"], row["status"], row["path"], row["old_path"]) for row in rows]
    assert got == [
        (c1, "added", "a.txt", None),
        (c1, "added", "dir/b.py", None),
        (c2, "modified", "a.txt", None),
        (c3, "renamed", "dir/c.py", "dir/b.py"),
        (c4, "deleted", "a.txt", None),
    ]
    assert rows[2]["before"] == "one\ntwo\n" and rows[2]["after"] == "one\n2\n"
    assert rows[0]["before"] is None and rows[4]["after"] is None
    assert rows[3]["before"] == rows[3]["after"] == "print('b')\n"
    assert [row["commit_index"] for row in rows] == [0, 0, 1, 2, 3]
    assert rows[0]["parent"] is None and rows[2]["parent"] == c1
    assert stats.commits == 4 and stats.changes == 5 and not stats.skipped


def test_text_is_kept_byte_exact(make_repo):
    r = make_repo()
    texts = {
        "crlf.bat": "@echo off\r\nrem x\r\n",
        "nofinal.txt": "last line without newline",
        "tabs.mk": "all:\n\techo\ttab\n",
        "unicode/数据.md": "wide 数据 and emoji 🎉 café\n",
        "esc.py": 'RED = "\x1b[31m"\x07\n',
    }
    r.commit("texts", texts)
    rows, _ = mine_all(r.path)
    assert {row["path"]: row["after"] for row in rows} == texts


def test_merge_is_diffed_against_first_parent(make_repo):
    r = make_repo()
    r.commit("base", {"main.txt": "m\n"})
    r.git("checkout", "-q", "-b", "side")
    r.commit("side work", {"side.txt": "s\n"})
    r.commit("more side work", {"side.txt": "s\ns2\n"})
    r.git("checkout", "-q", "main")
    r.commit("main work", {"main.txt": "m\nm2\n"})
    r.git("merge", "-q", "--no-ff", "-m", "merge side", "side")
    rows, stats = mine_all(r.path)
    # The side branch's commits are not on the first-parent chain; the merge brings its result.
    assert stats.commits == 3
    merge = [row for row in rows if row["message"].startswith("merge side")]
    assert [(m["status"], m["path"], m["after"]) for m in merge] == [
        ("added", "side.txt", "s\ns2\n")
    ]


def test_skips_are_counted_by_reason(make_repo, tmp_path):
    sub = make_repo("sub")
    sub.commit("sub", {"x": "x\n"})
    r = make_repo()
    r.commit(
        "all kinds",
        {
            "ok.txt": "fine\n",
            "bin.dat": b"\x00\x01binary",
            "latin1.txt": "café\n".encode("latin-1"),
            "big.txt": "x" * 2000,
            "node_modules/lib/index.js": "module.exports = 1\n",
            "web/app.min.js": "var a=1;\n",
            "Cargo.lock": "# lock\n",
            "model.bin": "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n",
        },
    )
    (r.path / "link").symlink_to("ok.txt")
    r.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "subm")
    r.commit("link and submodule")
    rows, stats = mine_all(r.path, max_file_bytes=1000)
    assert sorted(row["path"] for row in rows) == [".gitmodules", "ok.txt"]
    assert stats.skipped == {
        "binary": 1,
        "not_utf8": 1,
        "too_large": 1,
        "vendored": 3,
        "lfs_pointer": 1,
        "symlink": 1,
        "submodule": 1,
    }


def test_since_mines_only_new_commits(make_repo):
    r = make_repo()
    r.commit("one", {"a": "1\n"})
    old = r.commit("two", {"a": "2\n"})
    r.commit("three", {"a": "3\n"})
    repo = pygit2.Repository(str(r.path))
    chain = history.first_parent_chain(repo, repo.head.target, pygit2.Oid(hex=old))
    assert [c.message for c in chain] == ["three\n"]


def test_commits_since_only_extends_the_first_parent_chain(make_repo):
    r = make_repo()
    a = r.commit("A", {"a": "1\n"})
    b = r.commit("B", {"b": "1\n"})
    r.git("checkout", "-q", "-b", "side", a)
    r.commit("S", {"s": "1\n"})
    r.git("merge", "-q", "--no-ff", "-m", "M", "main")  # B only as the second parent
    m = r.git("rev-parse", "HEAD")
    repo = pygit2.Repository(str(r.path))

    def since(old: str, head: str):
        chain = history.commits_since(repo, pygit2.Oid(hex=old), pygit2.Oid(hex=head))
        return None if chain is None else [c.message for c in chain]

    assert since(a, m) == ["S\n", "M\n"]
    assert since(m, m) == []
    assert since(b, m) is None  # reachable, but not on the first-parent chain
    assert since(m, a) is None  # the branch moved back
    assert since("1" * 40, m) is None  # gone after a rewrite and a gc


@pytest.mark.parametrize(
    ("path", "vendored"),
    [
        ("package-lock.json", True),
        ("a/b/yarn.lock", True),
        ("x/node_modules/y.js", True),
        ("static/app.min.js", True),
        ("src/vendor/lib.c", True),
        ("src/vendors.py", False),
        ("src/app.js", False),
        ("dist.py", False),
    ],
)
def test_vendored_paths(path, vendored):
    assert history.is_vendored(path) is vendored


def test_demo_corpus_repository_mines_back_to_its_history(tmp_path):
    """The demo's training corpus (ghframes.sample.build_corpus) is a real git history whose
    mined rows are the generated history it was built from, change for change."""
    from ghframes.realistic import realistic_history
    from ghframes.sample import build_corpus

    build_corpus(str(tmp_path / "corpus"), num_files=3, edits_per_file=2)
    rows, stats = mine_all(tmp_path / "corpus")
    expected = [change for commit in realistic_history(3, 2) for change in commit]
    keys = ("commit_index", "status", "path", "before", "after", "message")
    assert [{k: r[k] for k in keys} for r in rows] == [
        {k: (e[k] + "\n" if k == "message" else e[k]) for k in keys} for e in expected
    ]
    assert stats.commits == len(realistic_history(3, 2)) and not stats.skipped


def test_mine_reports_its_progress_in_commits(make_repo):
    r = make_repo()
    for k in range(150):
        r.commit(f"c{k}", {"a.txt": f"{k}\n"})
    reported = []
    rows, stats = mine_all(r.path, on_commits=reported.append)
    assert stats.commits == 150 and len(rows) == 150
    assert reported == [history.PROGRESS_EVERY] * (149 // history.PROGRESS_EVERY)


def test_a_path_that_is_not_utf8_is_one_counted_skip_and_the_rest_is_mined(make_repo):
    r = make_repo()
    c1 = r.commit("add", {"a.txt": "one\n"})
    (r.path / "caf\xe9.txt".encode("latin-1").decode("utf-8", "surrogateescape")).write_text("x\n")
    c2 = r.commit("latin-1 name", {"a.txt": "two\n"})
    c3 = r.commit("edit", {"a.txt": "three\n"})
    rows, stats = mine_all(r.path)
    assert [(row["commit"], row["path"]) for row in rows] == [
        (c1, "a.txt"),
        (c2, "a.txt"),
        (c3, "a.txt"),
    ]
    assert stats.commits == 3 and stats.skipped == {"path_not_utf8": 1}
