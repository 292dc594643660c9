"""`ghframes render DATA`: replay DATA/edits as terminal videos in DATA/frames; and its benchmark."""

from __future__ import annotations

import logging
import sys

from ghframes.cli.cluster import check_reachable, connect_bounds
from ghframes.progress import Progress
from ghframes.render.session import RenderOptions
from ghframes.store import lock
from ghframes.text import shown

log = logging.getLogger(__name__)


def add_typist_arguments(p, defaults: RenderOptions) -> None:
    """`--typist`, `--seed`, `--typo-rate`: who types, and the seed of every choice."""
    from ghframes.render.typist import TYPISTS

    p.add_argument(
        "--typist",
        choices=sorted(TYPISTS),
        default=defaults.typist,
        help="human: types like a person (words, moves, autoindent, typos, pauses); replay: "
        "the exact shortest plan at a fixed 100 ms a key (default %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        metavar="N",
        help="a non-negative integer; every random choice of the human typist derives from it "
        "and the repository, commit and path, so renders are reproducible (default %(default)s)",
    )
    p.add_argument(
        "--typo-rate",
        type=float,
        default=defaults.typo_rate,
        metavar="R",
        help="typos per typed letter, 0 to 0.5; 0 types without mistakes (default: drawn per "
        "repository, median 0.055)",
    )
    p.add_argument(
        "--no-color",
        action="store_true",
        help="draw monochrome frames: no syntax highlighting, bars, prompt or git colours "
        "(recorded in the session options) (default: colour)",
    )


def options_from_args(args) -> RenderOptions:
    return RenderOptions(
        max_frames_per_session=args.max_frames_per_session,
        max_typed_chars_per_change=args.max_typed_chars_per_change,
        max_typed_chars_per_commit=args.max_typed_chars_per_commit,
        max_actions_per_change=args.max_actions_per_change,
        max_actions_per_commit=args.max_actions_per_commit,
        typist=args.typist,
        seed=args.seed,
        typo_rate=args.typo_rate,
        color=not args.no_color,
    )


def run(args, env) -> int:
    # Ray reads its connection bounds at import and at start-up: set for the whole command.
    with connect_bounds(args.ray_address, args.ray_timeout):
        return _run(args, env)


def _run(args, env) -> int:
    from ghframes.pipelines.render import render_dataset

    options = options_from_args(args)
    check_reachable(args.ray_address, args.ray_timeout)
    bar = Progress("render", "frame", enabled=not args.no_progress, scale=True)

    def progress(done: int, known: int) -> None:
        bar.set(done, known)

    try:
        with lock.hold(args.data, "render"):
            manifest = render_dataset(
                args.data,
                options,
                args.ray_address,
                args.num_cpus,
                progress,
                ray_timeout=args.ray_timeout,
                announce=not args.no_progress,
            )
    finally:
        bar.close()
    sessions = manifest["sessions"].values()
    frames = sum(s["num_frames"] for s in sessions)
    size = sum(s["bytes"] for s in sessions)
    failed = {k: r for k, r in manifest["repos"].items() if r["status"] != "ok"}
    if manifest.get("up_to_date"):
        repos, n = len(manifest["repos"]), len(manifest["sessions"])
        print(
            shown(
                f"up to date: {repos} repositor{'ies' if repos != 1 else 'y'}, {n} "
                f"session{'s' * (n != 1)}, {frames:,} frames in {args.data}/frames"
            )
        )
        return 0
    print(
        shown(
            f"rendered {len(manifest['sessions'])} sessions, {frames} frames, "
            f"{size / max(frames, 1):.1f} bytes/frame into {args.data}/frames"
        )
    )
    removed = manifest["removed"]
    if removed["shards"]:
        print(
            shown(
                f"removed {removed['shards']} shards ({removed['bytes']:,} bytes) of earlier "
                f"renders no longer in the manifest from {args.data}/frames"
            )
        )
    for key, repo in failed.items():
        kept = ""
        if repo.get("stale"):
            n = len(repo["sessions"])
            kept = f"; kept {n} session{'s' * (n != 1)} from an earlier render"
        error = shown(f"{key}: {repo.get('error', 'not rendered')}{kept}")
        print(f"ghframes: error: {error}", file=sys.stderr)
    return 1 if failed else 0
