"""``safeadapt-bench compare``: did a run reproduce a reference results directory, record by record?"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare a run's records with a reference results directory; prints 'reproduced' or the differences",
        description="Compare every cell record of RUN_DIR with the record of the same cell in REF_DIR. They "
        "reproduce each other when identical apart from their timing and provenance sections (floats bit for "
        "bit). Prints 'reproduced', or, per record and field, what differs. Exit status 0 when reproduced, "
        "1 when not.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="results directory of the run to check")
    p.add_argument("ref_dir", metavar="REF_DIR", help="reference results directory (e.g. results/quick)")
    p.add_argument("--max-fields", type=int, default=20, help="differing fields listed per record (default 20)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from safeadapt_bench.harness.compare import compare_results

    result = compare_results(args.run_dir, args.ref_dir)
    print(result.report(max_fields=args.max_fields))
    return 0 if result.reproduced else 1
