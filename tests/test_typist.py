"""The typists: exact on any change (a hypothesis property), seeded, and human in the ways the
issue names — words and lines, movement, autoindent, typos — each measured on real edits."""

from __future__ import annotations

import pathlib
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghframes.errors import GhframesError
from ghframes.render.editor import Editor
from ghframes.render.habits import Habits, draw_habits
from ghframes.render.human import plan_edit
from ghframes.render.typist import person_for

CALM = Habits(  # a person who never errs and always walks with arrows: plans easy to read
    wpm=50.0,
    typo_rate=0.0,
    notice=0.6,
    late_fix=0.0,
    near_lines=1000,
    far=(1.0, 0.0, 0.0),
    word_motion=0.0,
    word_delete=0.0,
    cut_lines=0.0,
    revisit=0.0,
    pause=1.0,
)


def replay(before: str, actions: list[str]) -> str:
    editor = Editor(before)
    for action in actions:
        editor.press(action)
    return editor.text


def human(before: str, after: str, habits: Habits = CALM, seed: int = 0):
    plan = plan_edit(before, after, habits, random.Random(seed))
    assert replay(before, plan.actions) == after
    assert len(plan.times) == len(plan.actions)
    assert all(0 <= t <= 65_535 for t in plan.times)
    return plan


# ------------------------------------------------------------------ exactness, by property

_chars = st.sampled_from(
    list("abcxyz_ (){}:=,.#\t\r") + ["é", "中", "😀", "\x1b", "\u200b", "\x7f"]
)
_line = st.text(_chars, max_size=30) | st.text(st.sampled_from("ab "), min_size=150, max_size=400)
_lines = st.lists(_line, max_size=30)


def _join(lines: list[str], final: bool, crlf: bool) -> str:
    sep = "\r\n" if crlf else "\n"
    return sep.join(lines) + (sep if final and lines else "")


@st.composite
def changes(draw) -> tuple[str, str]:
    """A `before` and an `after`: unrelated, or `before` with lines edited, added, removed."""
    crlf = draw(st.booleans())
    old = draw(_lines)
    if draw(st.booleans()):
        new = draw(_lines)
    else:
        new = list(old)
        for _ in range(draw(st.integers(0, 6))):
            where = draw(st.integers(0, len(new)))
            kind = draw(st.sampled_from(["edit", "insert", "delete", "indent"]))
            if kind == "insert" or not new:
                new.insert(where, draw(_line))
            elif where < len(new):
                if kind == "delete":
                    del new[where]
                elif kind == "indent":
                    new[where] = draw(st.sampled_from(["    ", "\t", "  \t"])) + new[where]
                else:
                    words = new[where].split(" ")
                    words[draw(st.integers(0, len(words) - 1))] = draw(st.text(_chars, max_size=8))
                    new[where] = " ".join(words)
    return _join(old, draw(st.booleans()), crlf), _join(new, draw(st.booleans()), crlf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes(), st.integers(0, 2**32 - 1))
def test_the_human_typist_reproduces_any_change(change, seed):
    before, after = change
    habits = draw_habits(random.Random(seed), typo_rate=random.Random(seed).choice([0, 0.05, 0.3]))
    human(before, after, habits, seed)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_human_typist_reproduces_edits_of_a_long_file(seed):
    text = _source("screens.py")
    lines = text.split("\n")
    rng = random.Random(seed)
    for _ in range(rng.randint(1, 8)):
        k = rng.randrange(len(lines))
        lines[k : k + rng.randint(0, 3)] = ["    # " + "x" * rng.randint(0, 30)] * rng.randint(0, 3)
    human(text, "\n".join(lines), draw_habits(rng), seed)


def _source(name: str) -> str:
    import pyte

    return (pathlib.Path(pyte.__file__).parent / name).read_text()


# ------------------------------------------------------------------ seeded, recorded


def test_plans_are_the_same_for_the_same_seed_and_differ_for_another():
    before, after = _source("screens.py"), _source("screens.py").replace("self.", "this.", 40)
    habits = draw_habits(random.Random(1))
    a = plan_edit(before, after, habits, random.Random(7))
    b = plan_edit(before, after, habits, random.Random(7))
    c = plan_edit(before, after, habits, random.Random(8))
    assert (a.actions, a.times) == (b.actions, b.times)
    assert a.actions != c.actions


def test_each_repository_gets_its_own_person_and_the_seed_changes_them():
    one = person_for("human", 0, None, "github.com/a/b")
    assert one is person_for("human", 0, None, "github.com/a/b")
    assert one.habits != person_for("human", 0, None, "github.com/a/c").habits
    assert one.habits != person_for("human", 1, None, "github.com/a/b").habits
    assert person_for("human", 0, 0.0, "github.com/a/b").habits.typo_rate == 0.0
    assert person_for("replay", 0, None, "github.com/a/b").habits is None
    recorded = one.as_dict()
    assert recorded["name"] == "human" and recorded["habits"]["wpm"] == one.habits.wpm


def test_an_unknown_typist_is_refused_with_the_valid_names():
    with pytest.raises(GhframesError, match=r"--typist must be one of human, replay, got 'robot'"):
        person_for("robot", 0, None, "r")


# ------------------------------------------------------------------ words and lines


def test_a_changed_word_is_deleted_from_its_end_and_retyped():
    plan = human("x = test_dir(a)\n", "x = captured_dir(a)\n")
    # walk to the end of the old word, back over it, type the new one: no arrow inside it
    assert plan.actions == (["<Right>"] * 12 + ["<BS>"] * 8 + list("captured_dir") + ["<C-s>"])


def test_a_mostly_new_line_is_cleared_back_to_its_indentation_and_retyped():
    plan = human("    return compute(a, b)\n", "    raise ValueError('no')\n")
    typed = [a for a in plan.actions if len(a) == 1]
    assert "".join(typed) == "raise ValueError('no')"
    assert plan.actions[0] == "<End>"


def test_a_new_line_is_opened_at_the_end_of_the_line_above():
    plan = human("def draw(x):\n    pass\n", "def new():\n    pass\n\ndef draw(x):\n    pass\n")
    # the new function is typed above `def draw`, never pushing its text to the right
    assert plan.actions[:3] == ["<Enter>", "<Up>", "d"]
    plan = human("a = 1\nb = 2\n", "a = 1\nc = 3\nb = 2\n")
    assert plan.actions[:3] == ["<End>", "<Enter>", "c"]


def test_autoindent_leaves_only_the_difference_to_type():
    before = "def f():\n    if x:\n        return 1\n"
    after = "def f():\n    if x:\n        return 1\n        y = 2\n    z = 3\n"
    plan = human(before, after)
    spaces = plan.actions.count(" ")
    assert spaces == 4  # `y = 2`, `z = 3`: two spaces each; no indentation typed by hand
    assert plan.actions.count("<BS>") == 4  # one level of dedent for `z = 3`


# ------------------------------------------------------------------ movement


def _far_edits(habits: Habits, seed: int) -> Counter:
    text = _source("screens.py")
    lines = text.split("\n")
    for k in (1200, 40, 900, 300, 150, 230, 360):  # gaps of 0.9 to 2.6 pages
        lines[k] = lines[k] + "  # reviewed"
    return Counter(human(text, "\n".join(lines), habits, seed).actions)


def test_far_targets_are_reached_by_paging_go_to_line_and_search_as_habits_say():
    keys = Counter()
    for seed in range(6):
        keys += _far_edits(draw_habits(random.Random(seed)), seed)
    for key in ("<PgDn>", "<PgUp>", "<C-g>", "<C-f>", "<Up>"):
        assert keys[key] > 0, key


def test_near_targets_are_walked_to_with_arrow_runs_down_and_back_up():
    text = "".join(f"line {k}\n" for k in range(60))
    lines = text.split("\n")
    lines[12], lines[30] = "line twelve", "line thirty"
    eager = Habits(**{**CALM.__dict__, "revisit": 1.0})  # the lower hunk first, then back up
    plan = human(text, "\n".join(lines), eager)
    keys = Counter(plan.actions)
    assert keys["<Down>"] >= 30 and keys["<Up>"] >= 18, keys
    assert not keys["<PgDn>"] and not keys["<C-g>"]  # near: arrows only


def test_hunks_are_sometimes_visited_out_of_order():
    eager = Habits(**{**CALM.__dict__, "revisit": 1.0})
    keys = _far_edits(eager, 0)
    assert keys["<Up>"] > 0  # a hunk above done after one below


def test_word_keys_move_along_lines():
    wordy = Habits(**{**CALM.__dict__, "word_motion": 1.0, "word_delete": 1.0})
    plan = human(
        "result = compute(value, limit=10)\n", "result = compute(value, bound=10)\n", wordy
    )
    assert "<C-Right>" in plan.actions and "<C-BS>" in plan.actions


# ------------------------------------------------------------------ typos


def test_typos_are_made_and_fixed_at_the_rate_asked():
    text = "\n".join(f"value_{k} = compute_something(argument, other)" for k in range(200)) + "\n"
    sloppy = Habits(**{**CALM.__dict__, "typo_rate": 0.05, "late_fix": 0.2})
    plan = human("", text, sloppy)
    letters = sum(c.isalpha() for c in text)
    assert 0.03 < plan.typos / letters < 0.07
    assert plan.actions.count("<BS>") >= plan.typos
    assert plan.typos == 0 or "<Left>" in plan.actions  # some fixed later by moving back
    assert human("", text, CALM).actions.count("<BS>") == 0


def test_times_follow_the_person():
    slow = Habits(**{**CALM.__dict__, "wpm": 20.0})
    fast = Habits(**{**CALM.__dict__, "wpm": 100.0})
    text = "the quick brown fox jumps over the lazy dog\n" * 20
    slow_ms = sorted(human("", text, slow).times)
    fast_ms = sorted(human("", text, fast).times)
    assert slow_ms[len(slow_ms) // 2] > 3 * fast_ms[len(fast_ms) // 2]


@pytest.mark.parametrize("typist", ["human", "replay"])
def test_sessions_of_both_typists_replay_exactly_and_record_who_typed(typist):
    from ghframes.realistic import realistic_history
    from ghframes.render.session import RenderOptions, render_session

    commits = realistic_history(3, 2)
    chunks, meta = render_session("github.com/t/t", commits, RenderOptions(typist=typist))
    actions = [a for chunk in chunks["actions"] for a in chunk]
    rows = {(r["commit_index"], r["path"]): r for rows in commits for r in rows}
    played = [c for c in meta["changes"] if "editor_first" in c]
    assert played
    for change in played:
        row = rows[change["commit_index"], change["path"]]
        first, n = change["editor_first"], change["editor_actions"]
        assert replay(row["before"] or "", actions[first : first + n]) == row["after"]
        assert actions[first + n] == "<C-q>"
    assert meta["typist"]["name"] == typist
    assert (meta["typist"]["habits"] is None) == (typist == "replay")
    again, _ = render_session("github.com/t/t", commits, RenderOptions(typist=typist))
    assert again == chunks  # byte-identical on a second render


def test_a_person_who_only_pages_still_reaches_a_line_far_away():
    pager = Habits(**{**CALM.__dict__, "near_lines": 5, "far": (1.0, 0.0, 0.0)})
    text = "".join(f"line {k}\n" for k in range(2000))
    plan = human(text, text.replace("line 1900\n", "line 1900 changed\n"), pager)
    assert "<C-g>" in plan.actions  # beyond four pages, go to the line
