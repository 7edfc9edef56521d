"""``safeadapt-bench datasets``: the local datasets with their size, episodes, success and cost rates."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the local offline-log datasets",
                       description="List the datasets in $MINARI_DATASETS_PATH (default ~/.minari/datasets) with "
                       "their size (in all and per episode), episodes, success rate (episodes that succeeded) and "
                       "cost rate (steps with cost > 0). Reads metadata only.")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def run(args: argparse.Namespace) -> int:
    import json

    from safeadapt_bench.data import list_datasets
    from safeadapt_bench.data.ids import datasets_root

    rows = list_datasets()
    if args.json:
        print(json.dumps({"root": str(datasets_root()), "datasets": rows}, indent=2))
        return 0
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    if not rows:
        console.print(f"no datasets under {datasets_root()}; create one with `safeadapt-bench collect`")
        return 0
    table = Table(title=f"datasets in {datasets_root()}")
    for col in ("id", "size", "MB/episode", "episodes", "steps", "success rate", "cost rate", "ep. cost", "note"):
        table.add_column(col, justify="left" if col in ("id", "note") else "right", no_wrap=col != "note")
    for r in rows:
        table.add_row(r["id"], f"{r['size_mb']:.1f} MB", _fmt(r["mb_per_episode"], ".2f"),
                      _fmt(r["episodes"], "d"), _fmt(r["steps"], "d"),
                      _fmt(r["success_rate"], ".2f"), _fmt(r["cost_rate"], ".3f"),
                      _fmt(r["mean_episode_cost"], ".2f"), r["problem"])
    console.print(table)
    return 0
