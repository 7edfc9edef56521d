"""Rebuild every table and figure of a results directory from its records alone."""

from __future__ import annotations

import os
from collections.abc import Sequence

from safeadapt_bench.harness.leaderboard import DEFAULT_REPS, leaderboard, write_tables
from safeadapt_bench.harness.records import ResultsDir, load_records


def build_report(
    results_path: str,
    out_dir: str | None = None,
    reps: int = DEFAULT_REPS,
    plots: bool = True,
    agent_order: Sequence[str] | None = None,
) -> str:
    """Write tables (``report/*.md|csv|tex``), figures (``report/figures/*.png|pdf``) and the HTML
    page ``report/index.html`` (leaderboard, figures, expert logs, videos, settings, provenance).

    ``agent_order`` (default: the manifest's ``agent_order``, the order of the suites that wrote the
    records) lists agents in tables and figures. Returns the output directory (default ``<results>/report``).
    """
    records = load_records(results_path)
    if not records:
        raise FileNotFoundError(f"{results_path} has no cell records yet.")
    if agent_order is None:
        agent_order = ResultsDir(results_path, create=False).manifest.get("agent_order")
    if agent_order:  # tables and figures list agents in this order (the rest after, by cell id)
        rank = {a: i for i, a in enumerate(agent_order)}
        records.sort(key=lambda r: rank.get(r["config"]["agent"], len(rank)))
    out_dir = out_dir or os.path.join(results_path, "report")
    lb = leaderboard(records, reps=reps)
    write_tables(records, out_dir, reps=reps, lb=lb)
    figures = None
    if plots:
        from safeadapt_bench.harness.plots import make_plots

        figures = make_plots(records, os.path.join(out_dir, "figures"), reps=reps, lb=lb)
    from safeadapt_bench.harness.html import write_html

    write_html(records, lb, results_path, out_dir, figures, reps)
    return out_dir
