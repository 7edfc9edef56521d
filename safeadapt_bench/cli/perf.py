"""``safeadapt-bench perf``: speed figures beside their references, as ratios, in one run."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from safeadapt_bench.perf import SECTIONS

    p = sub.add_parser("perf", help="measure speeds against their references",
                       description="Measure speeds and print each beside its reference as a ratio. "
                       "Figures are medians; the machine may be shared, so compare ratios.")
    p.add_argument("--section", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                   help="which benchmark sections to run (default: all)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke check")
    p.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import importlib
    import json
    import platform
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 170)
    results = []
    for name in args.section:
        console.print(f"[bold]perf: {name}[/bold] ...")
        results += importlib.import_module(f"safeadapt_bench.perf.{name}").run(quick=args.quick)
    table = Table(title=f"safeadapt-bench perf ({platform.node()}, {platform.processor() or platform.machine()})")
    for col in ("section", "measure", "value", "reference", "ref. value", "ratio", "target"):
        table.add_column(col, justify="right" if col in ("value", "ref. value", "ratio") else "left")
    for m in results:
        ratio = m.ratio
        table.add_row(m.section, m.name, f"{m.value:.4g} {m.unit}", m.reference_name,
                      "" if m.reference is None else f"{m.reference:.4g} {m.unit}",
                      "" if ratio is None else f"{ratio:.3f}x", m.target)
    console.print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([m.to_dict() for m in results], f, indent=2)
    return 0
