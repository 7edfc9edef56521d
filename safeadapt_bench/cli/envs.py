"""``safeadapt-bench envs``: the registered ids with their categories and splits."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("envs", help="list the registered environments, categories and splits",
                       description="List every registered SafeAdapt id with its task, split, categories, "
                       "distractors (the grounding ids) and episode length.")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from gymnasium.envs.registration import registry
    from rich.console import Console
    from rich.table import Table

    from safeadapt_bench.envs.categories import SPLITS
    from safeadapt_bench.envs.costs import COST_TERMS
    from safeadapt_bench.envs.registration import registered_ids

    rows = []
    for env_id in registered_ids():
        spec = registry[env_id]
        task = spec.entry_point.rsplit(":", 1)[1].removesuffix("Env")
        split = spec.kwargs.get("split", "train")
        n = spec.kwargs.get("distractors", 0)
        pool_split = spec.kwargs.get("distractor_split") or split
        rows.append({"id": env_id, "task": task, "split": split, "categories": list(SPLITS[task][split]),
                     "distractors": n, "distractor_split": pool_split if n else None,
                     "max_episode_steps": spec.max_episode_steps})
    if args.json:
        print(json.dumps({"envs": rows, "cost_terms": list(COST_TERMS)}, indent=2))
        return 0
    table = Table(title="SafeAdapt environments")
    for col in ("id", "task", "split", "categories", "distractors", "steps"):
        table.add_column(col, no_wrap=col != "categories")
    for r in rows:
        among = f"{r['distractors']} ({r['distractor_split']})" if r["distractors"] else "0"
        table.add_row(r["id"], r["task"], r["split"], ", ".join(r["categories"]), among, str(r["max_episode_steps"]))
    console = Console()
    console.print(table)
    console.print("cost terms: " + ", ".join(COST_TERMS))
    return 0
