"""``safeadapt-bench run``: a grid of agents x tasks x seeds from a named suite or a suite file."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a benchmark suite (agents x tasks x seeds); resumes an interrupted sweep",
        description="Run every cell of a suite: pre-train on the task's offline logs, adapt on the train "
        "categories with periodic evaluation, then evaluate on the train and held-out categories. One "
        "JSON "
        "record per cell is written to --results; cells that already have a record are skipped, so "
        "re-running the same command resumes a sweep. Tables and plots are built at the end "
        "(see `safeadapt-bench report`).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--suite", default=None, help="named suite: smoke, quick, standard, cross-embodiment")
    src.add_argument("--config", metavar="FILE", help="suite file (.toml, .yaml or .yml)")
    p.add_argument("--results", metavar="DIR", help="results directory (default: results/<suite name>)")
    p.add_argument(
        "--agents", nargs="+", metavar="AGENT", help="replace the suite's agents (names or module:Class)"
    )
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="keep only these tasks (family or label)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="replace the suite's seeds")
    p.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where cells run (default: local)"
    )
    p.add_argument("--workers", type=int, default=1, help="local: parallel worker processes (default 1)")
    p.add_argument("--address", default=None, help="ray: cluster address (default: start a local instance)")
    p.add_argument("--gpus-per-cell", type=float, default=0.0, help="ray: GPUs each cell reserves")
    p.add_argument("--env-factory", metavar="MODULE:FN", help="override settings.env_factory")
    p.add_argument("--dataset-provider", metavar="MODULE:FN", help="override settings.dataset_provider")
    p.add_argument("--dry-run", action="store_true", help="print the plan (cells, status, budgets) and exit")
    p.add_argument("--no-report", action="store_true", help="do not build tables and plots at the end")
    p.add_argument(
        "--videos",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep rollout videos of the final evaluations (default: the suite's choice; on except "
        "for smoke, where filming costs more than 5%% of the time)",
    )
    p.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="torch device of the agents: auto (CUDA where torch sees a GPU, else CPU), cpu, cuda or cuda:N "
        "(default: the suite's, auto for the named suites); not part of the cells' configuration",
    )
    p.add_argument(
        "--compare-to",
        metavar="REF_DIR",
        default=None,
        help="after the sweep, compare its records with those of REF_DIR (as `safeadapt-bench compare`) "
        "and print whether it reproduced them; exit status 3 when it did not",
    )
    p.add_argument("--list-suites", action="store_true", help="list the named suites and exit")
    p.set_defaults(func=run)


def build_suite(args: argparse.Namespace):  # -> Suite
    """The suite named or loaded by the arguments, with --agents / --tasks / --seeds / overrides applied."""
    import dataclasses

    from safeadapt_bench.harness.suites import SuiteError, get_suite, load_suite_file

    suite = load_suite_file(args.config) if args.config else get_suite(args.suite or "quick")
    changes: dict = {}
    if args.agents:
        changes["agents"] = tuple(args.agents)
        changes["agent_kwargs"] = {k: v for k, v in suite.agent_kwargs.items() if k in args.agents}
    if args.tasks:
        keep = tuple(t for t in suite.tasks if t.task in args.tasks or t.label in args.tasks)
        unknown = [n for n in args.tasks if not any(n in (t.task, t.label) for t in suite.tasks)]
        if unknown:
            raise SuiteError(
                f"Unknown task(s) {unknown} for suite {suite.name!r}; its tasks: "
                f"{[t.label for t in suite.tasks]}."
            )
        changes["tasks"] = keep
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    if getattr(args, "videos", None) is not None:
        changes["videos"] = args.videos
    if getattr(args, "device", None) is not None:
        from safeadapt_bench.harness.devices import check_device

        try:
            changes["device"] = check_device(args.device)
        except ValueError as err:
            raise SuiteError(f"--device: {err}") from None
    overrides = {
        k: v for k, v in (("env_factory", args.env_factory), ("dataset_provider", args.dataset_provider)) if v
    }
    if overrides:
        changes["settings"] = dataclasses.replace(suite.settings, **overrides)
    return suite.replace(**changes) if changes else suite


def print_plan(suite, results_path: str) -> None:
    """The --dry-run table: every cell with its status, plus agent resolution and budgets."""
    import os
    import sys

    from rich.console import Console
    from rich.table import Table

    from safeadapt_bench.harness.records import ResultsDir
    from safeadapt_bench.harness.sweep import agent_status, plan

    console = Console(width=None if sys.stdout.isatty() else 200)  # keep cell ids whole in pipes
    results = (
        ResultsDir(results_path, create=False)
        if os.path.exists(os.path.join(results_path, "manifest.json"))
        else None
    )
    todo, done = plan(suite, results)
    done_ids = {s.cell_id for s in done}
    s = suite.settings
    console.print(f"[bold]suite[/bold] {suite.name}: {suite.description}")
    console.print(
        f"results: {os.path.abspath(results_path)}  cells: {len(todo) + len(done)} "
        f"({len(done)} done, {len(todo)} to run)"
    )
    console.print(
        f"budgets: dataset {s.dataset_episodes} episodes ({s.dataset_policy}), pre-train "
        f"updates={s.pretrain_updates} seconds={s.pretrain_seconds}, adapt {s.adapt_env_steps} env steps"
        f"{'' if s.adapt_seconds is None else f' / {s.adapt_seconds} s'}, eval every {s.eval_every} "
        f"steps x {s.eval_episodes} episodes, final {s.final_eval_episodes} episodes per split, "
        f"videos {'on' if suite.videos else 'off'}, device {suite.device}"
    )
    for agent, status in agent_status(suite).items():
        console.print(
            f"agent {agent}: " + ("[green]ok[/green]" if status == "ok" else f"[red]{status}[/red]")
        )
    table = Table()
    for col in ("cell", "agent", "task", "seed", "obs", "status"):
        table.add_column(col)
    for spec in suite.cells():
        table.add_row(
            spec.cell_id,
            spec.agent,
            spec.task.label,
            str(spec.seed),
            spec.task.obs_mode,
            "done" if spec.cell_id in done_ids else "to run",
        )
    console.print(table)


def _print_video_share(results_path: str, cell_ids: list[str]) -> None:
    """What filming cost in the cells just run (timing.video_seconds over timing.cell_seconds)."""
    from safeadapt_bench.harness.records import ResultsDir

    results = ResultsDir(results_path, create=False)
    timing = [(r := results.load(c)) and r["timing"] for c in cell_ids]
    video = sum(t.get("video_seconds") or 0.0 for t in timing if t)
    cells = sum(t.get("cell_seconds") or 0.0 for t in timing if t)
    if video and cells:
        print(
            f"videos: {video:.1f} s of {cells:.0f} s of cell time ({100 * video / cells:.1f}%; --no-videos skips them)"
        )


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from safeadapt_bench.harness.suites import SUITES

    if args.list_suites:
        for name, s in SUITES.items():
            print(
                f"{name:18s} {len(s.agents)} agents x {len(s.tasks)} tasks x {len(s.seeds)} seeds  "
                f"{s.description}"
            )
        return 0
    suite = build_suite(args)
    results_path = args.results or os.path.join("results", suite.name)
    if args.dry_run:
        print_plan(suite, results_path)
        return 0

    from safeadapt_bench.harness.executors import make_executor
    from safeadapt_bench.harness.sweep import run_sweep

    if args.executor == "local":  # fail before running anything when the device is not there
        from safeadapt_bench.harness.devices import resolve_device

        resolve_device(suite.device)
    if args.compare_to and not os.path.exists(os.path.join(args.compare_to, "manifest.json")):
        raise FileNotFoundError(f"--compare-to {args.compare_to}: not a results directory (no manifest.json).")

    try:
        executor = make_executor(
            args.executor, workers=args.workers, address=args.address, num_gpus_per_cell=args.gpus_per_cell
        )
    except ImportError as err:
        print(f"safeadapt-bench run: error: {err}", file=sys.stderr)
        return 2
    result = run_sweep(suite, results_path, executor)
    print(
        f"{len(result.completed)} cell(s) run, {len(result.skipped)} already done, "
        f"{len(result.failed)} failed; "
        f"records in {os.path.join(os.path.abspath(results_path), 'cells')}"
    )
    _print_video_share(results_path, result.completed)
    for cell_id, err in result.failed.items():
        print(
            f"--- {cell_id} failed:\n{err.rstrip().splitlines()[-1]}\n(full traceback in "
            f"{os.path.join(results_path, 'errors', cell_id + '.json')})",
            file=sys.stderr,
        )
    if not args.no_report and (result.completed or result.skipped):
        from safeadapt_bench.harness.report import build_report

        out = build_report(results_path, agent_order=suite.agents)
        print(f"tables and plots in {out}")
    if args.compare_to:
        from safeadapt_bench.harness.compare import compare_results

        comparison = compare_results(results_path, args.compare_to)
        print(comparison.report())
        if not comparison.reproduced:
            return 1
    return 1 if result.failed else 0
