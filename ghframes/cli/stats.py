"""The `ghframes stats` parser: what a dataset holds, and with `--actions` how human its keys are."""

from __future__ import annotations

from collections.abc import Mapping


def add_stats(sub, env: Mapping[str, str]) -> None:
    from ghframes.cli import _command

    p = _command(
        sub,
        "stats",
        "Summarise a dataset: repositories, commits, frames, bytes, skips by reason.",
        """
Reads the manifests of DATA/edits and, once rendered, DATA/frames. With --actions it also
replays every session's keys on the editor model and measures how human they are: the share
of each key class, keystrokes per character, typos, runs of one key, how lines are opened and
indented, the time between keys; beside each, the published figure of human typing where one
exists (ghframes/keystats.py defines every figure).

example:
  ghframes stats data --actions --json
""",
    )
    p.add_argument("data", metavar="DATA", help="dataset folder or URI to summarise")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of a table (default: a table)",
    )
    p.add_argument(
        "--actions",
        action="store_true",
        help="also measure the keys of every rendered session, read from DATA/frames (with "
        "--json under the key `actions`) (default: the manifests' counts only)",
    )
    p.set_defaults(handler="ghframes.stats:run")
