"""``safeadapt-bench report``: rebuild tables and plots of a results directory from its records."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="build leaderboard tables and figures from a results directory",
        description="Read the cell records of a results directory and write the leaderboard "
        "(Markdown, CSV, LaTeX; IQM with 95% stratified-bootstrap intervals from rliable) and "
        "the figures (PNG and PDF).",
    )
    p.add_argument("results", help="results directory written by `safeadapt-bench run`")
    p.add_argument("--out", help="output directory (default: RESULTS/report)")
    p.add_argument(
        "--reps", type=int, default=None, help="bootstrap replications (default 2000; 50000 for papers)"
    )
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.add_argument(
        "--order", nargs="+", metavar="AGENT",
        help="list agents in this order in tables and figures (default: the order of the suite that wrote "
        "the records, kept in the results directory's manifest)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from safeadapt_bench.harness.leaderboard import DEFAULT_REPS
    from safeadapt_bench.harness.report import build_report

    out = build_report(
        args.results,
        args.out,
        reps=args.reps or DEFAULT_REPS,
        plots=not args.no_plots,
        agent_order=args.order,
    )
    print(open(os.path.join(out, "leaderboard.md")).read())
    print(f"tables and figures in {out}")
    return 0
