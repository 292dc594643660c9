"""The `ghframes export` parser: a session, or a range of its frames, for other tools."""

from __future__ import annotations

from collections.abc import Mapping


def add_export(sub, env: Mapping[str, str]) -> None:
    from ghframes.cli import _command

    p = _command(
        sub,
        "export",
        "Export a session, or a range of its frames, as asciicast, HTML, PNG or GIF.",
        """
cast is asciicast v2 (`asciinema play FILE`); html is one self-contained file with a player;
png is one frame drawn in DejaVu Sans Mono; gif is an animated GIF of the frames. All draw the
frames' colours and attributes. Session ids: `ghframes view DATA` lists them.
cast, html and gif play each frame for as long as it was on screen when it was rendered (the
time before its key), a long pause shortened to --idle-time-limit; --cps plays at a fixed rate.

example:
  ghframes export data --session ID --format html --from 1000 --to 2000 -o part.html
""",
    )
    p.add_argument("data", metavar="DATA", help="dataset folder or URI holding DATA/frames")
    p.add_argument(
        "--session", metavar="ID", required=True, help="the session to export (required)"
    )
    p.add_argument(
        "--format",
        choices=["cast", "html", "png", "gif"],
        required=True,
        help="what to write, one of: %(choices)s (required)",
    )
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="file to write (required)")
    p.add_argument(
        "--from",
        dest="start",
        type=int,
        default=None,
        metavar="N",
        help="first frame to export, from 0 to the session's last frame (default 0)",
    )
    p.add_argument(
        "--to",
        dest="stop",
        type=int,
        default=None,
        metavar="N",
        help="export frames before this one, past --from and at most the session's "
        "length (default: to the end)",
    )
    p.add_argument(
        "--cps",
        type=float,
        default=None,
        help="cast/html/gif: play at this fixed rate of keystrokes (frames) per second, a positive "
        "finite number, instead of at the times recorded with each key (default: the recorded "
        "times; 30 for a shard that has none)",
    )
    p.add_argument(
        "--idle-time-limit",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="cast/html/gif at the recorded times: play every longer pause as this long (the "
        "cast's idle_time_limit; its timestamps keep the recorded times); 0 plays pauses in "
        "full (default %(default)g)",
    )
    p.add_argument(
        "--frame",
        type=int,
        default=None,
        metavar="N",
        help="png: the frame to draw, within [--from, --to) (default: --from, else 0)",
    )
    p.set_defaults(handler="ghframes.view.export:run")
