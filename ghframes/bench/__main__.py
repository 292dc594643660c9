"""`python -m ghframes.bench [--only STAGE] [--json FILE]`: run the benchmarks, print a table."""

from __future__ import annotations

import argparse
import json
import sys

from ghframes.bench import BENCHMARKS, benchmark, commit, machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ghframes.bench",
        description="Measure each stage's throughput on this machine; print a table, write JSON.",
        epilog="example: python -m ghframes.bench --only render --json bench.json",
    )
    parser.add_argument(
        "--json", default="bench.json", help="where to write the results (default: bench.json)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        help="run only this stage (repeatable; default: every stage)",
    )
    args = parser.parse_args(argv)
    rows: list[dict] = []
    for stage in args.only or BENCHMARKS:
        print(f"running {stage} …", file=sys.stderr, flush=True)
        rows += benchmark(stage)()
    width = max(len(r["name"]) for r in rows)
    where, sha = machine(), commit()
    print(f"# ghframes bench on {where}, commit {sha or 'unknown'}")
    print(f"{'benchmark':<{width}}  {'value':>14}  unit")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['value']:>14,}  {r['unit']}")
    report = {"machine": where, "commit": sha, "rows": rows}
    with open(args.json, "w") as out:
        json.dump(report, out, indent=1)
        out.write("\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
