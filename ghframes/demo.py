"""`make demo`: the whole pipeline on embedded repositories, with no network.

Builds the sample repository and the training corpus (ghframes.sample) under DATA, then runs
each stage through the same command line a user types, and prints what it produced.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ghframes import cli, open_dataset, sample
from ghframes.crawl.sources import parse_source


def step(title: str, argv: list[str]) -> None:
    print(f"\n$ ghframes {' '.join(argv)}    # {title}", flush=True)
    code = cli.main(argv)
    if code != 0:
        sys.exit(f"demo: `ghframes {' '.join(argv)}` failed with exit code {code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ghframes.demo", description=__doc__)
    parser.add_argument("--out", default="data", help="dataset folder (default: data)")
    parser.add_argument("--train-steps", type=int, default=240, help="training steps (default 240)")
    args = parser.parse_args(argv)
    repo = os.path.join(args.out, "sample-repo")
    if not os.path.isdir(repo):
        sample.build(repo)
        print(f"built the sample repository at {repo} ({len(sample.HISTORY)} commits)")
    corpus = os.path.join(args.out, "corpus-repo")
    if not os.path.isdir(corpus):
        sample.build_corpus(corpus)
        print(f"built the training corpus repository at {corpus} (pyte and tqdm sources typed in)")
    step("mine the histories into edit shards", ["crawl", repo, corpus, "--out", args.out])
    # Sessions of about a thousand frames, so that some can be held out for evaluation.
    step(
        "replay every edit as keystrokes in a 48x160 terminal",
        ["render", args.out, "--max-frames-per-session", "1000"],
    )
    step("check that every replay reproduces its commit exactly", ["verify", args.out])
    step("what the dataset holds", ["stats", args.out])
    train = os.path.join(args.out, "train")
    print(
        f"\n$ python -m ghframes.training.train --data {args.out} --out {train}    # the tiny model, a few minutes"
    )
    code = subprocess.call(
        [
            sys.executable,
            "-m",
            "ghframes.training.train",
            "--data",
            args.out,
            "--out",
            train,
            "--steps",
            str(args.train_steps),
            "--eval-every",
            "40",
            "--eval-batches",
            "16",
            "--threads",
            "2",
        ]
    )
    if code != 0:
        sys.exit(f"demo: training failed with exit code {code}")
    name = parse_source(repo).repo
    session = next(s for s in open_dataset(args.out).sessions() if s.repo == name)
    picture = os.path.join(args.out, "frame.png")
    step(
        "one frame as a picture",
        [
            "export",
            args.out,
            "--session",
            session.id,
            "--format",
            "png",
            "--frame",
            str(session.num_frames // 2),
            "-o",
            picture,
        ],
    )
    print(f"\nwatch a session:   ghframes view {args.out} --session {session.id}")
    print(
        f"or in a browser:   ghframes export {args.out} --session {session.id} --format html -o session.html"
    )
    print(
        f"or with asciinema: ghframes export {args.out} --session {session.id} --format cast -o session.cast"
    )
    print(f"a frame as PNG:    {picture}")
    print(f"checkpoint:        {os.path.join(train, 'checkpoint.pt')}")
    print(f"loss curves:       {os.path.join(train, 'loss.png')} (metrics in metrics.jsonl)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
