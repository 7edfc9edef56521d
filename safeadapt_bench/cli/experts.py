"""``safeadapt-bench experts``: the scripted experts' success and safe-action table."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experts", help="evaluate the scripted experts per category and per robot",
                       description="Roll the scripted policy on every category of both splits (Panda) and on "
                       "every other robot (train split), and print success rates and safe-action ratios.")
    p.add_argument("--episodes", type=int, default=50, help="seeded episodes per row (default 50)")
    p.add_argument("--tasks", nargs="+", default=["Lift", "PickPlace"],
                   choices=["Lift", "PickPlace", "LiftAmong", "PickPlaceAmong"],
                   help="task families; LiftAmong / PickPlaceAmong (the grounding ids) give one row per split")
    p.add_argument("--robots", nargs="*", default=["Sawyer", "UR5e", "Kinova3", "IIWA", "Jaco"],
                   help="robots besides the Panda (default: all five)")
    p.add_argument("--policy", default="expert", choices=["expert", "noisy", "careless"])
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--out", metavar="FILE", help="also write the table as JSON (and FILE.md as Markdown)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from safeadapt_bench.experts.evaluate import expert_table, to_markdown, to_records

    if args.episodes <= 0 or args.workers <= 0:
        raise ValueError("--episodes and --workers must be positive.")
    if args.out and os.path.exists(args.out):
        raise FileExistsError(f"{args.out} exists; choose another --out or remove it first.")
    rows = expert_table(tuple(args.tasks), tuple(args.robots), args.episodes, args.policy, args.workers)
    table = to_markdown(rows)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(to_records(rows), f, indent=2)
        with open(args.out + ".md", "w") as f:
            f.write(table + "\n")
    return 0
