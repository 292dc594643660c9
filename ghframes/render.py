"""`ghframes render DATA`: replay DATA/edits as terminal videos in DATA/frames; and its benchmark."""

from __future__ import annotations

import logging
import sys
import time

from ghframes.session import RenderOptions

log = logging.getLogger(__name__)


def options_from_args(args) -> RenderOptions:
    return RenderOptions(
        max_frames_per_session=args.max_frames_per_session,
        max_typed_chars_per_change=args.max_typed_chars_per_change,
        max_typed_chars_per_commit=args.max_typed_chars_per_commit,
        max_actions_per_change=args.max_actions_per_change,
    )


def run(args, env) -> int:
    from ghframes.pipelines.render import render_dataset

    options = options_from_args(args)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="frame", unit_scale=True, desc="render", file=sys.stderr)

    def progress(done: int, known: int) -> None:
        if bar is not None:
            bar.total = known
            bar.update(done - bar.n)

    try:
        manifest = render_dataset(args.data, options, args.ray_address, args.num_cpus, progress)
    finally:
        if bar is not None:
            bar.close()
    sessions = manifest["sessions"].values()
    frames = sum(s["num_frames"] for s in sessions)
    size = sum(s["bytes"] for s in sessions)
    failed = {k: r for k, r in manifest["repos"].items() if r["status"] != "ok"}
    print(
        f"rendered {len(manifest['sessions'])} sessions, {frames} frames, "
        f"{size / max(frames, 1):.1f} bytes/frame into {args.data}/frames"
    )
    removed = manifest["removed"]
    if removed["shards"]:
        print(
            f"removed {removed['shards']} shards ({removed['bytes']:,} bytes) of earlier renders "
            f"no longer in the manifest from {args.data}/frames"
        )
    for key, repo in failed.items():
        kept = ""
        if repo.get("stale"):
            n = len(repo["sessions"])
            kept = f"; kept {n} session{'s' * (n != 1)} from an earlier render"
        print(f"ghframes: error: {key}: {repo.get('error', 'not rendered')}{kept}", file=sys.stderr)
    return 1 if failed else 0


def realistic_history(num_files: int = 12, edits_per_file: int = 3) -> list[list[dict]]:
    """A deterministic edit history over real source files (pyte's and tqdm's, installed here).

    Files are added one per commit (up to 4,000 characters each, typed in full), and each
    earlier file then gets commits that change, insert and delete a few lines: the mix of long
    typing runs and navigation a repository's early history shows.
    """
    import pathlib
    import random

    import pyte
    import tqdm

    sources = []
    for package in (pyte, tqdm):
        folder = pathlib.Path(package.__file__).parent
        sources += sorted(folder.glob("*.py"))
    sources = [p for p in sources if p.stat().st_size > 1500][:num_files]
    rng = random.Random(0)
    texts: dict[str, str] = {}
    commits: list[list[dict]] = []

    def commit(path: str, status: str, before: str | None, after: str, message: str) -> None:
        index = len(commits)
        commits.append(
            [
                {
                    "repo": "github.com/bench/history",
                    "commit": f"{index + 1:040x}",
                    "parent": f"{index:040x}" if index else None,
                    "commit_index": index,
                    "author_time": 1_700_000_000 + index * 3600,
                    "author_tz": 0,
                    "message": message,
                    "path": path,
                    "old_path": None,
                    "status": status,
                    "mode": 0o100644,
                    "before": before,
                    "after": after,
                }
            ]
        )

    for source in sources:
        path = f"{source.parent.name}/{source.name}"
        text = source.read_text()[:4000]
        commit(path, "added", None, text, f"Add {path}")
        texts[path] = text
        for _ in range(edits_per_file):
            target = rng.choice(sorted(texts))
            lines = texts[target].split("\n")
            k = rng.randrange(len(lines))
            lines[k] = lines[k].replace("self", "this") + "  # reviewed"
            lines.insert(rng.randrange(len(lines)), "    result = compute(value, limit=10)")
            del lines[rng.randrange(len(lines))]
            after = "\n".join(lines)
            commit(target, "modified", texts[target], after, f"Tweak {target}")
            texts[target] = after
    return commits


def realistic_edit_rows(num_files: int = 12, edits_per_file: int = 3) -> list[dict]:
    """`realistic_history` as the rows `ghframes.sample.write_edits` takes (its own columns
    default there), for benchmarks and tests that write edits without a git history."""
    keep = ("commit_index", "path", "status", "before", "after")
    return [
        {k: r[k] for k in keep}
        for commit in realistic_history(num_files, edits_per_file)
        for r in commit
    ]


def bench_render(seconds: float = 5.0) -> list[dict]:
    """Frames rendered per second on one core over whole realistic sessions, and bytes per frame.

    The sessions are the edit history the bench builds from this machine's installed Python
    sources (`realistic_history`); the timing covers planning, the editor, pyte, capture
    and zstd, everything but the Parquet write.
    """
    import tempfile

    from ghframes.frames import write_session
    from ghframes.session import render_session
    from ghframes.shards import filesystem

    commits = realistic_history()
    options = RenderOptions()
    frames = 0
    elapsed = 0.0
    size = 0
    with tempfile.TemporaryDirectory() as tmp:
        fs, root = filesystem(tmp)
        while elapsed < seconds or frames == 0:
            start = time.perf_counter()
            chunks, metadata = render_session("github.com/bench/history", commits, options)
            elapsed += time.perf_counter() - start
            frames += metadata["num_frames"]
            if not size:
                size = write_session(fs, f"{root}/s.parquet", "bench", chunks, metadata)
                per_session = metadata["num_frames"]
    return [
        {
            "name": "render.frames_per_s_per_core",
            "value": round(frames / elapsed),
            "unit": "frames/s",
        },
        {
            "name": "render.bytes_per_frame",
            "value": round(size / per_session, 2),
            "unit": "bytes/frame",
        },
    ]
