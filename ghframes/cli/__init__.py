"""The `ghframes` command line: one subcommand per stage, each a thin layer over the library.

Configuration precedence: built-in defaults, then the environment (passed in as `env`, never
read deep inside), then flags. Every command exits 0 on success and non-zero with one line on
stderr for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from ghframes.errors import GhframesError


def _add_ray(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    parser.add_argument(
        "--ray-address",
        default=env.get("RAY_ADDRESS"),
        help="Ray cluster to run on (default: $RAY_ADDRESS, else an embedded local Ray)",
    )
    parser.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs for the embedded local Ray"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_crawl(sub, env: Mapping[str, str]) -> None:
    p = sub.add_parser(
        "crawl",
        help="mine repository histories into edit shards (DATA/edits)",
        description="Mine the first-parent history of each repository's default branch into "
        "Parquet edit shards under DATA/edits. SOURCE is a local repository path, a clone URL "
        "(https://, git://, file://, ssh://) or OWNER/NAME on GitHub.",
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="repositories to crawl")
    p.add_argument("--out", required=True, metavar="DATA", help="dataset folder to write")
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="bare mirror cache for cloned repositories (default: DATA/cache)",
    )
    p.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="Q",
        help='GitHub repository search, e.g. "language:python stars:>500" (repeatable)',
    )
    p.add_argument(
        "--org",
        action="append",
        default=[],
        metavar="NAME",
        help="all repositories of an organisation",
    )
    p.add_argument(
        "--user", action="append", default=[], metavar="NAME", help="all repositories of a user"
    )
    p.add_argument(
        "--api-url",
        default=env.get("GITHUB_API_URL", "https://api.github.com"),
        help="GitHub REST API root (GitHub Enterprise: https://HOST/api/v3)",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="at most this many discovered repositories"
    )
    p.add_argument(
        "--license",
        action="append",
        default=[],
        metavar="SPDX",
        help="keep only repositories under these licenses (repeatable; SPDX ids)",
    )
    p.add_argument("--include-forks", action="store_true", help="keep forks found by discovery")
    p.add_argument("--include-archived", action="store_true", help="keep archived repositories")
    p.add_argument(
        "--max-file-bytes",
        type=int,
        default=1 << 20,
        help="skip files larger than this on either side of a change (default 1 MiB)",
    )
    p.add_argument(
        "--max-wait",
        type=float,
        default=900.0,
        help="longest wait for a GitHub rate limit to reset, in seconds (default 900)",
    )
    _add_ray(p, env)
    p.set_defaults(handler="ghframes.cli.crawl:run")


def _add_render(sub, env: Mapping[str, str]) -> None:
    p = sub.add_parser(
        "render",
        help="replay edits as terminal videos (DATA/frames)",
        description="Replay every change of DATA/edits keystroke by keystroke in a shell and a "
        "full-screen editor drawn into a 48x160 terminal; write frame shards to DATA/frames.",
    )
    from ghframes.render.session import RenderOptions  # the defaults live there, once

    defaults = RenderOptions()
    p.add_argument("data", metavar="DATA")
    p.add_argument(
        "--max-frames-per-session",
        type=int,
        default=defaults.max_frames_per_session,
        metavar="N",
        help="start a new session at the next commit past N frames (default %(default)s)",
    )
    p.add_argument(
        "--max-typed-chars-per-change",
        type=int,
        default=defaults.max_typed_chars_per_change,
        metavar="N",
        help="skip (and count) a change that would type more than N characters "
        "(default %(default)s)",
    )
    p.add_argument(
        "--max-typed-chars-per-commit",
        type=int,
        default=defaults.max_typed_chars_per_commit,
        metavar="N",
        help="skip (and count) changes that take a commit past N typed characters "
        "(default %(default)s)",
    )
    p.add_argument(
        "--max-actions-per-change",
        type=int,
        default=defaults.max_actions_per_change,
        metavar="N",
        help="skip (and count) a change that would take more than N editor keys, deletions "
        "and navigation included (default %(default)s)",
    )
    _add_ray(p, env)
    p.set_defaults(handler="ghframes.cli.render:run")


def _add_view(sub, env: Mapping[str, str]) -> None:
    p = sub.add_parser("view", help="play a session in the terminal")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--session", metavar="ID", help="play this session (default: pick from a list)")
    p.add_argument("--frame", type=int, default=0, metavar="N", help="start at frame N")
    p.set_defaults(handler="ghframes.view.viewer:run")


def _add_export(sub, env: Mapping[str, str]) -> None:
    p = sub.add_parser("export", help="export a session as asciicast, HTML or PNG")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--session", metavar="ID", required=True)
    p.add_argument("--format", choices=["cast", "html", "png"], required=True)
    p.add_argument("-o", "--output", metavar="FILE", required=True)
    p.add_argument(
        "--from",
        dest="start",
        type=int,
        default=None,
        metavar="N",
        help="first frame to export (default 0)",
    )
    p.add_argument(
        "--to",
        dest="stop",
        type=int,
        default=None,
        metavar="N",
        help="export frames before this one (default: to the end)",
    )
    p.add_argument(
        "--cps",
        type=float,
        default=30.0,
        help="cast/html: keystrokes (frames) per second (default 30)",
    )
    p.add_argument(
        "--frame",
        type=int,
        default=None,
        metavar="N",
        help="png: the frame to draw (default: --from, else 0)",
    )
    p.set_defaults(handler="ghframes.view.export:run")


def _add_stats(sub, env: Mapping[str, str]) -> None:
    p = sub.add_parser("stats", help="summarise a dataset: repositories, commits, frames, skips")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler="ghframes.stats:run")


def _add_verify(sub, env: Mapping[str, str]) -> None:
    p = sub.add_parser("verify", help="check replay fidelity and shard integrity")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--all", action="store_true", help="list every mismatch, not only the first")
    p.add_argument(
        "--session",
        action="append",
        default=[],
        metavar="ID",
        help="verify only this session (repeatable)",
    )
    p.set_defaults(handler="ghframes.verify:run")


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ghframes",
        description="GitHub repository histories as terminal videos for training action models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_crawl, _add_render, _add_view, _add_export, _add_stats, _add_verify):
        add(sub, env)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    args = build_parser(env).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="ghframes: %(message)s",
        stream=sys.stderr,
    )
    module, func = args.handler.split(":")
    try:
        handler = getattr(importlib.import_module(module), func)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        print(f"ghframes: error: `{args.command}` is not part of this version yet", file=sys.stderr)
        return 2
    try:
        return handler(args, env)
    except GhframesError as exc:
        print(f"ghframes: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ghframes: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
