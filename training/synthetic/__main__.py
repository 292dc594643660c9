"""Command line: ``python -m ghframes.training.synthetic --preset quick --out DIR`` runs the serial-depth sweep."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .backbones import BACKBONES
from .experiment import PRESETS, config_with, run_sweep
from .tasks import TASKS


def parse_models(text: str) -> tuple[tuple[str, int], ...]:
    """``transformer:1,lstm:1`` -> (("transformer", 1), ("lstm", 1)); layers default to 1."""
    models = []
    for item in text.split(","):
        name, _, layers = item.strip().partition(":")
        if name not in BACKBONES:
            raise argparse.ArgumentTypeError(
                f"unknown backbone {name!r}; valid names: {', '.join(sorted(BACKBONES))}"
            )
        if layers and not layers.isdigit():
            raise argparse.ArgumentTypeError(f"{item!r}: layers must be a positive integer")
        models.append((name, int(layers or 1)))
    return tuple(models)


def parse_tasks(text: str) -> tuple[str, ...]:
    tasks = tuple(t.strip() for t in text.split(","))
    for name in tasks:
        if name not in TASKS:
            raise argparse.ArgumentTypeError(
                f"unknown task {name!r}; valid names: {', '.join(sorted(TASKS))}"
            )
    return tasks


def parse_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ghframes.training.synthetic",
        description="Serial-depth benchmarks (FRJT, withheld maze position tracking): accuracy by depth for each backbone.",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="quick: 2 CPU cores, <15 min; full: one GPU",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for results.json, table.md, accuracy_vs_depth.png",
    )
    p.add_argument(
        "--tasks", type=parse_tasks, help=f"comma-separated, from: {', '.join(sorted(TASKS))}"
    )
    p.add_argument(
        "--models", type=parse_models, help="comma-separated NAME:LAYERS, e.g. transformer:2,lstm:1"
    )
    p.add_argument("--eval-depths", type=parse_ints, help="comma-separated depths to evaluate")
    p.add_argument("--train-max-depth", type=int)
    p.add_argument(
        "--param-budgets",
        type=parse_ints,
        help="comma-separated model sizes in parameters, e.g. 20000,80000 (one sweep per size)",
    )
    p.add_argument(
        "--steps",
        type=int,
        help="optimizer steps for every task (default: per task, from the preset)",
    )
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, help="parallel training processes")
    p.add_argument("--threads", type=int, help="torch threads per process")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ...")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_with(
            args.preset,
            tasks=args.tasks,
            models=args.models,
            eval_depths=args.eval_depths,
            train_max_depth=args.train_max_depth,
            param_budgets=args.param_budgets,
            steps=None if args.steps is None else dict.fromkeys(TASKS, args.steps),
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            workers=args.workers,
            threads=args.threads,
            device=args.device,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    run_sweep(cfg, args.out)
    print(
        f"wrote {args.out}/table.md, results.json, accuracy_vs_depth.png in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
