"""`make demo`: the whole pipeline on the embedded sample repository, with no network.

Builds the sample repository (ghframes.sample) under DATA, then runs each stage that exists
through the same command line a user types, and prints what it produced.
"""

from __future__ import annotations

import argparse
import os
import sys

from ghframes import cli, sample


def step(title: str, argv: list[str]) -> None:
    print(f"\n$ ghframes {' '.join(argv)}    # {title}", flush=True)
    code = cli.main(argv)
    if code != 0:
        sys.exit(f"demo: `ghframes {' '.join(argv)}` failed with exit code {code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ghframes.demo", description=__doc__)
    parser.add_argument("--out", default="data", help="dataset folder (default: data)")
    args = parser.parse_args(argv)
    repo = os.path.join(args.out, "sample-repo")
    if not os.path.isdir(repo):
        sample.build(repo)
        print(f"built the sample repository at {repo} ({len(sample.HISTORY)} commits)")
    step("mine the history into edit shards", ["crawl", repo, "--out", args.out])
    step("replay every edit as keystrokes in a 48x160 terminal", ["render", args.out])
    step("check that every replay reproduces its commit exactly", ["verify", args.out])
    step("what the dataset holds", ["stats", args.out])
    return 0


if __name__ == "__main__":
    sys.exit(main())
