"""`python -m ghframes.training.scaling --preset quick --out runs/scaling` (`make scaling`).

OUT/data      the rendered corpus (or --data DATA: frames already rendered, split by repo)
OUT/runs/     one JSON record and one .npz of held-out step losses per (L, seed)
OUT/report.md, OUT/report.json, OUT/loss_vs_length.png, loss_vs_time.png, loss_by_position.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import torch

from ghframes.errors import GhframesError
from ghframes.text import shown

from . import PRESETS
from . import preset as preset_named
from .analysis import analyse, load_runs, markdown, plot
from .corpus import build_data
from .runs import HeldOutWindows, finished_run, run_one, time_steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ghframes.training.scaling",
        description="Held-out loss against trained sequence length: power-law fits, wall-time "
        "amortisation, loss by position (training/scaling/__init__.py).",
    )
    parser.add_argument(
        "--preset",
        default="quick",
        choices=list(PRESETS),
        help="quick: 2 CPU cores, under 30 minutes; full: a GPU, L up to 4,096; test: seconds "
        "(default quick)",
    )
    parser.add_argument(
        "--out", default="runs/scaling", help="output folder (default runs/scaling)"
    )
    parser.add_argument(
        "--data",
        help="rendered frames to use instead of building the corpus under OUT/data (needs at "
        "least two repositories and held-out sessions of max(L) frames)",
    )
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the preset's)")
    parser.add_argument(
        "--jobs",
        type=int,
        help="runs trained at once, one process each (default: the preset's; quick: 2, one "
        "per core, each on one thread)",
    )
    return parser


def run(
    preset_name: str,
    out: str,
    data: str | None = None,
    device: str | None = None,
    jobs: int | None = None,
) -> dict:
    """Every run of the preset (finished ones are kept; `jobs` of them at once, default the
    preset's), then the report; returns its data."""
    preset = preset_named(preset_name)
    if device:
        preset = dataclasses.replace(preset, train={**preset.train, "device": device})
    folder = Path(out)
    runs_dir = folder / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    data = data or build_data(preset, str(folder / "data"))
    held_out = HeldOutWindows(preset, data, torch.device(preset.train.get("device", "cpu")))
    print(
        f"held out: {held_out.count} windows of {held_out.length} frames from "
        f"{', '.join(held_out.repos)} ({held_out.sessions} sessions)",
        flush=True,
    )
    pending = []
    for seed in preset.seeds:
        for length in preset.lengths:
            if finished_run(preset, runs_dir, length, seed):
                print(f"L={length} seed {seed}: done before, kept", flush=True)
            else:
                pending.append((length, seed))
    jobs = min(jobs or preset.jobs, len(pending))
    if jobs > 1:
        # Runs side by side, one process each (spawned: no torch state is forked).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            for done in as_completed(
                [pool.submit(run_one, preset, data, n, seed, runs_dir) for n, seed in pending]
            ):
                try:
                    done.result()  # a run's GhframesError ends the experiment here
                except BrokenProcessPool:
                    raise GhframesError(
                        "a run's process ended abruptly (out of memory?); finished runs are kept"
                    ) from None
    else:
        for length, seed in pending:
            run_one(preset, data, length, seed, runs_dir, held_out)
    per_step = _timing(preset, data, runs_dir / "timing.json")
    report = analyse(preset, load_runs(preset, runs_dir), per_step)
    report["held_out"] = {"repos": held_out.repos, "sessions": held_out.sessions}
    (folder / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    held = f"{', '.join(held_out.repos)}"
    (folder / "report.md").write_text(markdown(report, {"held_out": held}))
    for path in plot(report, folder):
        print(f"wrote {path}")
    print(f"wrote {folder / 'report.md'} and {folder / 'report.json'}")
    return report


def _timing(preset, data: str, path: Path) -> dict[int, float]:
    """{L: seconds per step}, measured once per preset (runs.time_steps) and kept in `path`."""
    fingerprint = preset.fingerprint()
    try:
        stored = json.loads(path.read_text())
        if stored["preset"] == fingerprint:
            return {int(n): s for n, s in stored["seconds"].items()}
    except (OSError, ValueError, KeyError):
        pass
    seconds = time_steps(preset, data, log=lambda m: print(m, flush=True))
    record = {"preset": fingerprint, "seconds": {str(n): s for n, s in seconds.items()}}
    path.write_text(json.dumps(record) + "\n")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.jobs is not None and args.jobs < 1:
            raise GhframesError(f"--jobs must be >= 1, got {args.jobs}")
        run(args.preset, args.out, args.data, args.device, args.jobs)
    except GhframesError as exc:
        print(f"scaling: error: {shown(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scaling: interrupted (finished runs are kept)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
