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
from ghframes.text import ShownFormatter, shown

# Epilogs are printed as written (examples keep their line breaks); help lines still wrap.
FORMATTER = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other bad input's are."""

    def error(self, message: str):
        hint = f"(`{self.prog} --help` lists the arguments)"
        self.exit(2, f"ghframes: error: {shown(message)} {hint}\n")  # values quoted as typed


def seconds(text: str) -> float:
    """A number of seconds, finite and not negative (`--max-wait nan` is refused)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: not a finite number of seconds, 0 or more")
    return value


def _command(sub, name: str, summary: str, epilog: str) -> argparse.ArgumentParser:
    """A subcommand whose --help shows `summary` as its one-line description, then `epilog`."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=epilog.strip("\n"),
        formatter_class=FORMATTER,
    )


def _add_ray(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    from ghframes.cli.cluster import positive_int, positive_seconds, ray_address

    parser.add_argument(
        "--ray-address",
        type=ray_address,
        default=env.get("RAY_ADDRESS") or None,
        metavar="ADDRESS",
        help="Ray cluster to run on: `auto`, HOST:PORT or ray://HOST:PORT "
        "(default: $RAY_ADDRESS, else an embedded local Ray started for this run)",
    )
    parser.add_argument(
        "--num-cpus",
        type=positive_int,
        default=None,
        metavar="N",
        help="CPUs for the embedded local Ray, a positive integer; not for --ray-address "
        "(default: every CPU of this machine)",
    )
    parser.add_argument(
        "--ray-timeout",
        type=positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the --ray-address head to answer before giving up "
        "(default %(default)g)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar on stderr (default: show one)",
    )


def _add_crawl(sub, env: Mapping[str, str]) -> None:
    p = _command(
        sub,
        "crawl",
        "Mine repository histories (default branch, first parent) into DATA/edits.",
        """
One Parquet row per file change per commit, its text before and after included. Re-running
mines only the commits added since the last crawl. Environment: GITHUB_TOKEN (GitHub API and
clones), GITHUB_API_URL (default of --api-url), RAY_ADDRESS (default of --ray-address).

example:
  ghframes crawl ../my-project pallets/click --query "language:python stars:>500" \\
      --limit 20 --license MIT --out data
""",
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="a repository to crawl: a local path (bare or with a work tree), a clone URL "
        "(https://, git://, file://, ssh://) or OWNER/NAME on GitHub; any number, "
        "at least one unless --query, --org or --user is given",
    )
    p.add_argument(
        "--out", required=True, metavar="DATA", help="dataset folder to write (required)"
    )
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="folder of bare mirrors of cloned repositories and GitHub API answers, "
        "reused by later crawls (default: DATA/cache)",
    )
    p.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="Q",
        help="also crawl the repositories a GitHub repository search finds, e.g. "
        '"language:python stars:>500" (repeatable; default: no search)',
    )
    p.add_argument(
        "--org",
        action="append",
        default=[],
        metavar="NAME",
        help="also crawl every repository of this GitHub organisation (repeatable; default: none)",
    )
    p.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME",
        help="also crawl every repository of this GitHub user (repeatable; default: none)",
    )
    p.add_argument(
        "--api-url",
        default=env.get("GITHUB_API_URL", "https://api.github.com"),
        metavar="URL",
        help="GitHub REST API root; for GitHub Enterprise https://HOST/api/v3 "
        "(default: $GITHUB_API_URL, else https://api.github.com)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="keep at most N repositories found by --query/--org/--user, 0 or more "
        "(default: no limit)",
    )
    p.add_argument(
        "--license",
        action="append",
        default=[],
        metavar="SPDX",
        help="keep only discovered repositories under this license, an SPDX id such as MIT or "
        "Apache-2.0, case-insensitive (repeatable; default: any license or none)",
    )
    p.add_argument(
        "--include-forks",
        action="store_true",
        help="keep forks found by discovery (default: skip and count them)",
    )
    p.add_argument(
        "--include-archived",
        action="store_true",
        help="keep archived repositories found by discovery (default: skip and count them)",
    )
    p.add_argument(
        "--max-file-bytes",
        type=int,
        default=1 << 20,
        metavar="N",
        help="skip (and count) a change whose file is larger than N bytes on either side, "
        "a positive integer (default: %(default)s, 1 MiB)",
    )
    p.add_argument(
        "--max-wait",
        type=seconds,
        default=900.0,
        metavar="SECONDS",
        help="longest wait for a GitHub rate limit to reset before failing, in seconds, "
        "a finite number, 0 or more (default: %(default)g)",
    )
    _add_ray(p, env)
    p.set_defaults(handler="ghframes.cli.crawl:run")


def _add_render(sub, env: Mapping[str, str]) -> None:
    p = _command(
        sub,
        "render",
        "Replay DATA/edits as typing in a 48x160 terminal; write frames to DATA/frames.",
        """
Every change is typed key by key into a shell and a full-screen editor drawn by a terminal
emulator; each frame is its screen. A session is a run of commits of one repository. Changes
over a limit are skipped and counted (`ghframes stats`). Re-running draws only sessions whose
shard is not there yet. Environment: RAY_ADDRESS (default of --ray-address).

example:
  ghframes render data --typist human --seed 7 --max-frames-per-session 50000
""",
    )
    from ghframes.render.session import RenderOptions  # the defaults live there, once

    defaults = RenderOptions()
    p.add_argument(
        "data", metavar="DATA", help="dataset folder or URI (s3://...) holding DATA/edits"
    )
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
    p.add_argument(
        "--max-actions-per-commit",
        type=int,
        default=defaults.max_actions_per_commit,
        metavar="N",
        help="skip (and count) changes that take a commit past N actions, shell commands and "
        "editor keys together; a positive integer (default %(default)s)",
    )
    from ghframes.cli.render import add_typist_arguments

    add_typist_arguments(p, defaults)
    _add_ray(p, env)
    p.set_defaults(handler="ghframes.cli.render:run")


def _add_view(sub, env: Mapping[str, str]) -> None:
    p = _command(
        sub,
        "view",
        "Play a rendered session in this terminal, frame by frame.",
        """
Without --session it lists the sessions to pick from (up/down or j/k, Enter; q quits).
In the player `?` lists the keys: space plays and pauses, +/- change speed, g goes to a frame,
/ searches the screen. Needs a terminal on stdin and stdout (elsewhere: `ghframes export`).

example:
  ghframes view data --session ID --frame 1200
""",
    )
    p.add_argument("data", metavar="DATA", help="dataset folder or URI holding DATA/frames")
    p.add_argument(
        "--session",
        metavar="ID",
        help="play this session, an id as the session list shows it "
        "(default: pick one from a list)",
    )
    p.add_argument(
        "--frame",
        type=int,
        default=0,
        metavar="N",
        help="with --session: start at frame N, from 0 to the session's last frame "
        "(default %(default)s)",
    )
    p.set_defaults(handler="ghframes.view.viewer:run")


def _add_export(sub, env: Mapping[str, str]) -> None:
    from ghframes.cli.export import add_export  # the parser lives there (this file's length)

    add_export(sub, env)


def _add_stats(sub, env: Mapping[str, str]) -> None:
    from ghframes.cli.stats import add_stats  # the parser lives there (this file's length)

    add_stats(sub, env)


def _add_verify(sub, env: Mapping[str, str]) -> None:
    p = _command(
        sub,
        "verify",
        "Check replay fidelity and shard integrity of every rendered session.",
        """
Replays each session's actions and compares the text with its edits; checks each session's
frames, actions and cursor against the manifest. Exit 0 when all is exact, else 1 with one
stderr line per mismatch.

example:
  ghframes verify data --all
""",
    )
    p.add_argument("data", metavar="DATA", help="dataset folder or URI holding DATA/frames")
    p.add_argument(
        "--all",
        action="store_true",
        help="list every mismatch (default: stop at the first one)",
    )
    p.add_argument(
        "--session",
        action="append",
        default=[],
        metavar="ID",
        help="verify only this session (repeatable; default: every session)",
    )
    p.set_defaults(handler="ghframes.verify:run")


def _add_ls(sub, env: Mapping[str, str]) -> None:
    p = _command(
        sub,
        "ls",
        "List the rendered sessions: repository, commits, frames, bytes, skips.",
        """
One row per session of DATA/frames/_sessions.parquet (of the manifest, for older renders).

example:
  ghframes ls data --repo github.com/pallets/click --format csv -o sessions.csv
""",
    )
    p.add_argument("data", metavar="DATA", help="dataset folder or URI holding DATA/frames")
    p.add_argument(
        "--repo",
        metavar="R",
        help="only this repository's sessions: its name, key, or name without the first part "
        "(pallets/click, or a local folder's NAME) (default: all)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list (default: a table)")
    p.add_argument(
        "--format", choices=["csv", "parquet"], help="write -o FILE as %(choices)s (default: print)"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="file for --format (default: none)")
    p.set_defaults(handler="ghframes.ls:run")


COMMANDS = (_add_crawl, _add_render, _add_view, _add_export, _add_stats, _add_verify, _add_ls)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    from ghframes import __version__

    parser = Parser(
        prog="ghframes",
        description="GitHub repository histories as terminal videos for training action models.",
        epilog="""
The stages run in this order, each reading the previous one's files under DATA:
crawl (DATA/edits), render (DATA/frames), then verify, stats, ls, view and export.

example:
  ghframes crawl pallets/click --out data && ghframes render data && ghframes view data
""".strip("\n"),
        formatter_class=FORMATTER,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"ghframes {__version__}",
        help="print `ghframes VERSION` and exit",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log progress details on stderr (default: warnings and errors only)",
    )
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="the stage to run; `ghframes COMMAND --help` describes its arguments",
    )
    for add in COMMANDS:
        add(sub, env)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    args = build_parser(env).parse_args(argv)
    log_handler = logging.StreamHandler(sys.stderr)
    log_handler.setFormatter(ShownFormatter("ghframes: %(message)s"))  # messages quote names
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, handlers=[log_handler]
    )
    module, func = args.handler.split(":")
    handler = getattr(importlib.import_module(module), func)  # every command's module exists
    try:
        code = handler(args, env)
        sys.stdout.flush()  # here, so that a reader gone early is met below, not at exit
        return code
    except BrokenPipeError:
        # stdout's reader is gone (`ghframes stats DATA | head`): stop quietly, as `yes` does;
        # what is still buffered goes nowhere rather than raise again when Python exits.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a program a pipe closed on
    except GhframesError as exc:
        print(f"ghframes: error: {shown(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ghframes: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
