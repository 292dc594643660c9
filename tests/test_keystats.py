"""The realism figures (ghframes/keystats.py): exact on hand-built keys, and end to end.

Hand-built sessions are a shell command (`e`, `<Enter>`), one change's editor keys ending in
`<C-s>`, its `<C-q>` and the final `<C-d>`: 3 shell keys, the editor keys and `<C-q>`.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from ghframes import cli
from ghframes.errors import GhframesError
from ghframes.keystats import AUTO, TYPED, KeyStats, _Change, text_diff
from ghframes.render.editor import Editor, EditorError
from ghframes.stats import action_lines

SHELL = ["e", "<Enter>"]


def autoindents() -> bool:
    editor = Editor("  a")
    editor.press("<End>")
    editor.press("<Enter>")
    return editor.lines == ["  a", "  "]


def searches() -> bool:
    try:
        Editor("a").press("<C-f>")
    except EditorError:
        return False
    return True


needs_autoindent = pytest.mark.skipif(
    not autoindents(), reason="the editor's <Enter> does not autoindent yet (Editor('  a'))"
)
needs_search = pytest.mark.skipif(not searches(), reason="the editor has no <C-f> search yet")


def change(keys: list[str], first: int = len(SHELL)) -> dict:
    return {"commit_index": 0, "commit": "c" * 40, "path": "f.py", "editor_first": first,
            "editor_actions": len(keys)}  # fmt: skip


def measure(before: str | None, keys: list[str], dt: list[int] | None = None) -> dict:
    """The figures of one session: the shell command, `keys` (ending in <C-s>), <C-q>, <C-d>."""
    assert keys[-1] == "<C-s>"
    actions = [*SHELL, *keys, "<C-q>", "<C-d>"]
    times = None if dt is None else np.array(dt, np.uint16)
    stats = KeyStats()
    befores = {} if before is None else {(0, "f.py"): before}
    stats.add_session("s1", [(actions, times)], [change(keys)], befores)
    return stats.figures()


def test_a_typo_fixed_with_two_backspaces():
    # "the" typed as "tje", two <BS>, "he": 7 typing keys, 5 typed, 2 deleted, 3 survive
    figures = measure("", ["t", "j", "e", "<BS>", "<BS>", "h", "e", "<C-s>"])
    assert figures["kspc"] == figures["kspc_own_text"] == round(7 / 3, 4)
    assert figures["typo_rate"] == 0.4
    totals = figures["totals"]
    assert (totals["typed_chars"], totals["typed_chars_deleted"]) == (5, 2)
    assert (totals["frames"], totals["editor_keys"], totals["shell_keys"]) == (12, 9, 3)
    assert figures["share"]["backspace"] == round(2 / 12, 4)
    assert figures["share"]["save_quit"] == round(2 / 12, 4)
    assert figures["longest_run"] == {"length": 2, "key": "<BS>", "session": "s1", "frame": 5}


def test_deleting_the_files_own_text_is_editing_not_a_typo():
    figures = measure("abc", ["<End>", "<BS>", "<BS>", "<BS>", "x", "<C-s>"])
    assert (figures["kspc"], figures["kspc_own_text"], figures["typo_rate"]) == (4.0, 1.0, 0.0)
    assert figures["longest_run"]["length"] == 3


def test_retyping_a_character_typed_before_an_equal_one_is_no_typo():
    # "a" typed before the file's "a", then <Del> deletes the file's: the typed one survives
    figures = measure("a", ["a", "<Del>", "<C-s>"])
    assert figures["typo_rate"] == 0.0 and figures["totals"]["typed_chars"] == 1
    assert figures["kspc"] == 2.0 and figures["kspc_own_text"] == 1.0


@pytest.mark.parametrize(
    ("before", "keys", "opens"),
    [
        ("ab", ["<End>", "<Enter>", "c", "<C-s>"], 1.0),  # at the end of its line
        ("ab", ["<Right>", "<Enter>", "c", "<C-s>"], 0.0),  # within the line
        ("ab", ["<Home>", "<Enter>", "<Up>", "c", "<C-s>"], 1.0),  # a line opened above
        ("ab", ["<Home>", "<Enter>", "c", "<C-s>"], 0.0),  # "ab" pushed down, then typing
        ("", ["<Enter>", "<Enter>", "<C-s>"], 1.0),  # an empty line: its end
    ],
)
def test_enter_opens_a_line(before, keys, opens):
    figures = measure(before, keys)
    assert figures["enter_opens_line"] == opens
    assert figures["totals"]["enters"] == keys.count("<Enter>")


def test_four_spaces_typed_by_hand_on_an_unindented_line():
    figures = measure("a", ["<End>", "<Enter>", " ", " ", " ", " ", "b", "<C-s>"])
    assert figures["indent_keys_per_line"] == 4.0
    assert figures["totals"]["indented_lines"] == 1
    assert figures["totals"]["auto_chars"] == 0


@needs_autoindent
def test_autoindent_leaves_no_indentation_keys():
    # assumes autoindent: <Enter> copies "    ", then "b" alone: 0 keys for an indented line
    figures = measure("    a", ["<End>", "<Enter>", "b", "<C-s>"])
    assert figures["indent_keys_per_line"] == 0.0
    assert figures["totals"]["auto_chars"] == 4  # copied by the editor, not typed
    assert figures["totals"]["typed_chars"] == 2  # the newline and "b"
    assert figures["kspc"] == 1.0


@needs_autoindent
def test_dedenting_after_autoindent_costs_indentation_keys():
    # assumes autoindent: "        " copied, four <BS> keep "    ": 4 keys, one indented line
    keys = ["<End>", "<Enter>", "<BS>", "<BS>", "<BS>", "<BS>", "b", "<C-s>"]
    figures = measure("        a", keys)
    assert figures["indent_keys_per_line"] == 4.0
    assert figures["typo_rate"] == 0.0  # the editor's spaces deleted are not typed ones
    # assumes autoindent: <C-BS> deletes the copied indentation, the line is not indented
    figures = measure("    a", ["<End>", "<Enter>", "<C-BS>", "b", "<C-s>"])
    assert figures["indent_keys_per_line"] is None
    assert figures["totals"]["indented_lines"] == 0


def test_indentation_of_a_line_opened_above_counts_after_the_up():
    figures = measure("    a", ["<Home>", "<Enter>", "<Up>", " ", " ", "b", "<C-s>"])
    assert figures["indent_keys_per_line"] == 2.0 and figures["enter_opens_line"] == 1.0


@needs_search
def test_key_classes_prompts_and_pairs():
    keys = ["<C-f>", "b", "<BS>", "a", "<Enter>", "<C-g>", "1", "<Enter>", "<C-v>", "<C-a>"]
    keys += ["<C-Right>", "<Down>", "<PgDn>", "<C-k>", "<Tab>", "<U+200B>", "<C-s>"]
    figures = measure("foo\nbar\nbaz", keys)
    n = len(SHELL) + len(keys) + 2
    counts = {name: round(share * n) for name, share in figures["share"].items()}
    assert counts == {
        "printable": 4, "enter": 0, "backspace": 0, "delete": 0, "cut": 1, "vertical": 1,
        "horizontal": 0, "word": 1, "page": 1, "search": 5, "goto": 3, "save_quit": 2,
        "shell": 3,
    }  # fmt: skip
    assert figures["totals"]["typed_chars"] == 3  # ^A, the tab, U+200B
    assert figures["kspc"] == round(4 / 3, 4)


def test_a_change_without_its_edit_row_is_classified_not_replayed():
    figures = measure(None, ["x", "<Enter>", "<C-s>"])
    assert figures["share"]["printable"] == round(1 / 7, 4) and figures["kspc"] is None
    totals = figures["totals"]
    assert (totals["changes_replayed"], totals["changes_without_text"]) == (0, 1)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (["<F13>", "<C-s>"], "s1: cccccccccccc:f.py: frame 2: unknown editor key '<F13>'"),
        (["<C-v>", "a", "<C-s>"], "s1: cccccccccccc:f.py: frame 3: unknown editor key 'a' after <C-v>"),
    ],
)  # fmt: skip
def test_an_unknown_key_names_session_and_frame(keys, message):
    with pytest.raises(GhframesError) as raised:
        measure("", keys)
    assert str(raised.value) == message


def test_overlapping_changes_are_refused():
    stats = KeyStats()
    actions = ["<C-s>", "<C-q>", "<C-s>", "<C-q>"]
    changes = [dict(change(["<C-s>"], 0), path="a"), dict(change(["<C-s>"], 1), path="b")]
    with pytest.raises(GhframesError, match="s1: cccccccccccc:b: its editor keys overlap"):
        stats.add_session("s1", [(actions, None)], changes, {})


def test_inter_key_times_median_p95_mean_and_wpm():
    keys = ["a", "b", "c", "d", "e", "<C-s>"]
    dt = [1000, 50, 100, 100, 100, 100, 300, 400, 500, 60000]  # shell, five keys, <C-s>, ...
    figures = measure("", keys, dt)
    times = figures["inter_key_ms"]
    assert times["printable"] == {"median": 100, "p95": 300, "mean": 140.0}
    assert times["all"] == {"median": 100, "p95": 60000, "mean": 6265.0}
    # 5 characters (one word) in 700 ms of typing keys
    assert times["wpm"] == round(1 / (700 / 60000), 2)
    assert measure("", keys)["inter_key_ms"] is None


def test_the_table_says_no_times_recorded_and_names_every_figure():
    lines = action_lines(measure("", ["x", "<C-s>"]))
    text = "\n".join(lines)
    assert "no times recorded" in text
    for name in ("share.printable", "share.shell", "kspc", "kspc_own_text", "typo_rate",
                 "longest_run", "enter_opens_line", "indent_keys_per_line", "wpm",
                 "totals.frames", "totals.editor_keys", "totals.shell_keys",
                 "totals.typed_chars", "Dhakal et al. 2018"):  # fmt: skip
        assert name in text, name
    assert lines[1].split() == ["figure", "value", "human", "typing"]


def test_text_diff_places_an_edit_at_the_cursor():
    assert text_diff("xa", "xaa", 1, 2) == (1, 0, 1)  # typed before an equal character
    assert text_diff("xab", "xb", 2, 1) == (1, 1, 0)  # <BS>
    assert text_diff("    foobar", "    foo\n    bar", 7, 12) == (7, 0, 5)  # autoindent
    assert text_diff("a\nb", "a", 2, 0) == (1, 2, 0)  # the last line cut


KEYS = ["<Enter>", "<BS>", "<Del>", "<C-k>", "<Left>", "<Right>", "<Up>", "<Down>", "<Home>",
        "<End>", "<C-BS>", "<C-Left>", "<C-Right>"]  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_the_provenance_mask_follows_every_character(seed):
    """Typed characters are lower-case letters and newlines, the file's never: after random
    keys, the mask marks exactly the lower-case letters as typed, and only blanks as the
    editor's (autoindent)."""
    rng = random.Random(seed)
    lines = ["".join(rng.choice("AB \t") for _ in range(rng.randrange(8))) for _ in range(5)]
    editor_keys = [rng.choice(KEYS) if rng.random() < 0.6 else rng.choice("xyz") for _ in range(80)]
    try:
        Editor("").press("<C-BS>")
    except EditorError:
        editor_keys = [k for k in editor_keys if k not in ("<C-BS>", "<C-Left>", "<C-Right>")]
    stats = KeyStats()
    replay = _Change(stats, "\n".join(lines), "s")
    for t, key in enumerate(editor_keys):
        replay.press(key, t)
    masks, buffer = replay.masks, replay.editor.lines
    assert [len(m) for m in masks] == [len(line) + 1 for line in buffer]
    for line, mask in zip(buffer, masks, strict=True):
        assert [m == TYPED for m in mask[:-1]] == [c.islower() for c in line], (line, mask)
        assert all(c in " \t" for c, m in zip(line, mask, strict=False) if m == AUTO)
    assert sum(m.count(TYPED) for m in masks) == replay.typed - replay.deleted


# --- a rendered dataset, through the command line ---------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, sample_repo, ray_local):
    data = tmp_path_factory.mktemp("keystats") / "data"
    assert cli.main(["crawl", str(sample_repo), "--out", str(data), "--no-progress"], env={}) == 0
    assert cli.main(["render", str(data), "--no-progress"], env={}) == 0
    return data


def test_stats_actions_end_to_end(rendered, capsys):
    from ghframes.store.frames import open_dataset

    assert cli.main(["stats", str(rendered), "--actions", "--json"], env={}) == 0
    out = json.loads(capsys.readouterr().out)
    figures = out["actions"]
    dataset = open_dataset(str(rendered))
    sessions = [dataset.session(info.id) for info in dataset.sessions()]
    totals = figures["totals"]
    assert totals["frames"] == out["frames"]["frames"] == sum(len(s.actions) for s in sessions)
    # the editor keys are those of every change played in the editor, each with its <C-q>
    played = [c for s in sessions for c in s.changes if "editor_first" in c]
    assert totals["editor_keys"] == sum(c["editor_actions"] + 1 for c in played)
    assert totals["editor_keys"] + totals["shell_keys"] == totals["frames"]
    assert totals["changes_replayed"] == len(played) and totals["changes_without_text"] == 0
    assert sum(figures["share"].values()) == pytest.approx(1, abs=1e-3)
    assert figures["kspc"] >= figures["kspc_own_text"] >= 1
    assert 0 <= figures["typo_rate"] < 0.5 and 0 <= figures["enter_opens_line"] <= 1
    assert figures["reference"]["kspc"] == 1.17
    if all(s.dt is not None for s in sessions):
        every = np.concatenate([s.dt for s in sessions])
        assert figures["inter_key_ms"]["all"]["median"] == int(
            np.sort(every)[(len(every) - 1) // 2]
        )
    assert cli.main(["stats", str(rendered), "--actions"], env={}) == 0
    text = capsys.readouterr().out
    assert text.startswith("edits\n") and "\nactions (definitions: ghframes/keystats.py)\n" in text
    assert f"totals.frames                {totals['frames']:,}" in text


def test_stats_actions_without_frames_is_one_line(sample_repo, tmp_path, ray_local, capsys):
    data = tmp_path / "data"
    assert cli.main(["crawl", str(sample_repo), "--out", str(data), "--no-progress"], env={}) == 0
    capsys.readouterr()
    assert cli.main(["stats", str(data), "--actions"], env={}) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err == f"ghframes: error: {data}: no rendered frames (run `ghframes render {data}` first)\n"
    )
    assert cli.main(["stats", str(data)], env={}) == 0  # without --actions: the edits alone


def test_the_benchmark_rows_of_both_typists():
    from ghframes.bench.realism import TYPISTS, figure_rows, typist_figures
    from ghframes.realistic import realistic_history

    commits = realistic_history(2, 1)
    for typist in TYPISTS:
        rows = figure_rows(typist_figures(typist, commits))
        names = [name for name, _, _ in rows]
        assert {"kspc", "typo_rate", "longest_run", "totals.frames"} <= set(names)
        for name, value, unit in rows:
            assert f"{value:>14,}" and isinstance(unit, str), name  # the bench table's format


def test_the_table_shows_keys_and_session_ids_from_data_escaped(monkeypatch, capsys):
    import ghframes.keystats as keystats
    import ghframes.stats as stats

    hostile = "s\x1b]0;pwned\x07"
    figures = measure("", ["x", "<C-s>"])
    figures["longest_run"] = {"length": 3, "key": "\x9b", "session": hostile, "frame": 7}
    monkeypatch.setattr(stats, "collect", lambda data: {"edits": {}})
    monkeypatch.setattr(keystats, "dataset_figures", lambda data: figures)
    assert cli.main(["stats", "DATA", "--actions"], env={}) == 0
    out = capsys.readouterr().out
    assert "session s^[]0;pwned^G, frame 7" in out and "3 x '\\x9b'" in out
    assert "\x1b" not in out and "\x9b" not in out
