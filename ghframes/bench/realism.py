"""Realism benchmark: the keystroke figures (ghframes/keystats.py) of each typist, side by side.

The realistic benchmark history (ghframes/realistic.py) is rendered in this process once per
typist, as the render benchmark renders it, and measured as `ghframes stats --actions` measures
a dataset; a row per figure per typist, the typists of one figure next to each other, the
published human figure in the unit where there is one.
"""

from __future__ import annotations

from ghframes.keystats import CLASSES, REFERENCE, rendered_figures
from ghframes.realistic import realistic_history
from ghframes.render.session import RenderOptions, render_session

REPO = "github.com/bench/history"
TYPISTS = ("replay", "human")
# The human typist's habits are drawn per person: the history is typed by this many people
# (seeds 0, 1, …), so the figures are not one draw's (the replay typist has no habits).
PEOPLE = 8


def typist_figures(typist: str, commits: list[list[dict]]) -> dict:
    """The figures of `commits` rendered with `typist`, by PEOPLE people for the human one."""
    sessions = []
    for seed in range(PEOPLE if typist == "human" else 1):
        options = RenderOptions(typist=typist, seed=seed)
        chunks, metadata = render_session(REPO, commits, options)
        sessions.append((f"bench-{typist}-{seed}", chunks, metadata, commits))
    return rendered_figures(sessions)


def figure_rows(figures: dict) -> list[tuple[str, float, str]]:
    """(name, value, unit) of each figure that has a value."""
    human = f"human {REFERENCE['kspc']}"
    rows = [(f"share.{c}", figures["share"][c], "share of actions") for c in CLASSES]
    rows += [
        ("kspc", figures["kspc"], f"keys/char ({human})"),
        ("kspc_own_text", figures["kspc_own_text"], f"keys/char ({human})"),
        ("typo_rate", figures["typo_rate"], "of typed chars"),
    ]
    run = figures["longest_run"]
    if run is not None:
        rows.append(("longest_run", run["length"], f"keys ({run['key']!r})"))
    rows += [
        ("enter_opens_line", figures["enter_opens_line"], "of editor Enters"),
        ("indent_keys_per_line", figures["indent_keys_per_line"], "keys/indented line"),
    ]
    times = figures["inter_key_ms"]
    if times is not None:
        iki = f"ms (human mean {REFERENCE['inter_key_ms_mean']})"
        for which in ("all", "printable"):
            for stat in ("median", "p95", "mean"):
                value = None if times[which] is None else times[which][stat]
                rows.append(
                    (f"inter_key_ms.{which}.{stat}", value, iki if stat == "mean" else "ms")
                )
        rows.append(("wpm", times["wpm"], f"words/min (human {REFERENCE['wpm']})"))
    rows += [(f"totals.{k}", v, "count") for k, v in figures["totals"].items()]
    return [(name, value, unit) for name, value, unit in rows if value is not None]


def bench_realism() -> list[dict]:
    """Each figure of the replay and the human typist over the realistic history."""
    commits = realistic_history()
    by_typist = {}  # typist -> {figure: (value, unit)}
    for typist in TYPISTS:
        rows = figure_rows(typist_figures(typist, commits))
        by_typist[typist] = {name: (value, unit) for name, value, unit in rows}
    names = list(dict.fromkeys(n for rows in by_typist.values() for n in rows))
    return [
        {"name": f"realism.{name}.{typist}", "value": rows[name][0], "unit": rows[name][1]}
        for name in names
        for typist, rows in by_typist.items()
        if name in rows
    ]
