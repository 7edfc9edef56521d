"""Leaderboard tables built from cell records alone: IQM with 95% stratified-bootstrap intervals (rliable).

For each agent and metric, the scores form a ``(runs x tasks)`` matrix (runs = seeds present for every
task); rliable's ``aggregate_iqm`` gives the point estimate and ``get_interval_estimates`` its
percentile stratified-bootstrap interval, reproducible for a given ``seed`` (see
:func:`seeded_bootstrap`). Cells whose metric is ``None``
(e.g. forgetting without a backbone) are left out of that metric; censored adaptation times enter
at their censoring value.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from rliable import library as rly_library
from rliable import metrics as rly_metrics

from safeadapt_bench.harness.metrics import COST_TERM_NAMES, METRICS, flat_metrics

#: Metrics shown in the leaderboard, in order (those that are ``None`` for every cell are dropped).
LEADERBOARD_METRICS: tuple[str, ...] = (
    "success_train", "success_heldout", "generalisation", "success_source_robot", "wrong_object_rate",
    "adapt_steps_to_threshold", "adapt_seconds_to_threshold", "adapt_seconds",
    "safe_ratio_learning", "safe_ratio_deployment", "episodic_cost_learning", "episodic_cost_deployment",
    "violation_rate_learning", "violation_rate_deployment", "veto_rate_learning", "veto_rate_deployment",
    "unsafe_actions_learning", *(f"unsafe_{t}_learning" for t in COST_TERM_NAMES),
    "success_but_unsafe", "severity_hazard_mean", "severity_hazard_max",
    "severity_arm_contact_mean", "severity_arm_contact_max", "veto_threshold", "critic_auc_logs",
    "critic_precision_logs", "critic_recall_logs", "critic_auc_online", "critic_precision_online",
    "critic_recall_online",
    "trainable_fraction", "forgetting", "pretrain_seconds",
)  # fmt: skip

#: Default bootstrap replications (rliable's default is 50000; pass ``reps=50000`` for a paper).
DEFAULT_REPS = 2000


@contextlib.contextmanager
def seeded_bootstrap(seed: int) -> Iterator[np.random.RandomState]:
    """Make rliable's bootstrap reproducible inside the block; yields the ``random_state`` to pass.

    rliable 1.2's ``StratifiedBootstrap.update_indices`` draws from NumPy's *global* generator and
    ignores ``random_state``, so the global generator is seeded here and restored afterwards. arch's
    FutureWarning about ``random_state`` is silenced.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield np.random.RandomState(seed)
    finally:
        np.random.set_state(state)


def records_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per cell: ids (cell_id, suite, agent, task, seed) and every metric of :data:`METRICS`."""
    rows = []
    for r in records:
        cfg = r["config"]
        task = cfg["task"]
        label = f"{task['task']}-{task['robot']}" + (
            f"->{task['target_robot']}" if task.get("target_robot") else ""
        )
        rows.append(
            {
                "cell_id": r["cell_id"],
                "suite": cfg["suite"],
                "agent": cfg["agent"],
                "task": label,
                "seed": int(cfg["seed"]),
                **flat_metrics(r),
            }
        )
    cols = ["cell_id", "suite", "agent", "task", "seed", *METRICS]
    return pd.DataFrame(rows, columns=cols).astype({m: float for m in METRICS})


def score_matrix(df: pd.DataFrame, agent: str, metric: str) -> np.ndarray:
    """``(runs x tasks)`` scores of ``agent`` for ``metric``: seeds with a value on every task."""
    sub = df[df["agent"] == agent].pivot_table(
        index="seed", columns="task", values=metric, aggfunc="first", dropna=False
    )
    sub = sub.dropna(axis=0, how="any")
    return sub.to_numpy(dtype=float)


def iqm(scores: np.ndarray) -> float:
    """rliable's interquartile mean of a score matrix."""
    return float(rly_metrics.aggregate_iqm(scores))


def interval_estimates(score_dict: dict[str, np.ndarray], reps: int = DEFAULT_REPS, seed: int = 0):
    """rliable IQM point estimates and 95% stratified-bootstrap intervals, reproducible with ``seed``."""
    with seeded_bootstrap(seed) as random_state:
        return rly_library.get_interval_estimates(
            score_dict, lambda x: np.array([rly_metrics.aggregate_iqm(x)]), reps=reps, random_state=random_state
        )


def leaderboard(
    records: Sequence[dict[str, Any]],
    metrics: Sequence[str] = LEADERBOARD_METRICS,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> pd.DataFrame:
    """Long table: agent, metric, iqm, ci_low, ci_high, n_runs, n_tasks (aggregated over seeds and tasks)."""
    df = records_frame(records)
    agents = list(dict.fromkeys(df["agent"]))
    rows = []
    for metric in metrics:
        if df[metric].isna().all():
            continue
        for agent in agents:
            scores = score_matrix(df, agent, metric)
            if scores.size == 0:
                rows.append(
                    {
                        "agent": agent,
                        "metric": metric,
                        "iqm": np.nan,
                        "ci_low": np.nan,
                        "ci_high": np.nan,
                        "n_runs": 0,
                        "n_tasks": 0,
                    }
                )
                continue
            point, interval = interval_estimates({agent: scores}, reps=reps, seed=seed)
            rows.append(
                {
                    "agent": agent,
                    "metric": metric,
                    "iqm": float(point[agent][0]),
                    "ci_low": float(interval[agent][0, 0]),
                    "ci_high": float(interval[agent][1, 0]),
                    "n_runs": scores.shape[0],
                    "n_tasks": scores.shape[1],
                }
            )
    return pd.DataFrame(rows, columns=["agent", "metric", "iqm", "ci_low", "ci_high", "n_runs", "n_tasks"])


def per_task(records: Sequence[dict[str, Any]], metrics: Sequence[str] = LEADERBOARD_METRICS) -> pd.DataFrame:
    """Long table: agent, task, metric, IQM over seeds, number of seeds."""
    df = records_frame(records)
    rows = []
    for (agent, task), g in df.groupby(["agent", "task"], sort=False):
        for metric in metrics:
            vals = g[metric].dropna().to_numpy(dtype=float)
            if vals.size:
                rows.append(
                    {
                        "agent": agent,
                        "task": task,
                        "metric": metric,
                        "iqm": iqm(vals[:, None]),
                        "n_seeds": int(vals.size),
                    }
                )
    return pd.DataFrame(rows, columns=["agent", "task", "metric", "iqm", "n_seeds"])


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    a = abs(v)
    return (
        f"{v:.0f}"
        if a >= 100
        else f"{v:.3g}"
        if a >= 1
        else f"{v:.2f}"
        if a >= 0.01 or a == 0
        else f"{v:.1e}"
    )


def wide(lb: pd.DataFrame) -> pd.DataFrame:
    """Agents x metrics, each cell ``IQM [low, high]`` as text (for Markdown and LaTeX)."""
    cells = {}
    for _, r in lb.iterrows():
        text = (
            "n/a"
            if not np.isfinite(r["iqm"])
            else f"{_fmt(r['iqm'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        )
        cells.setdefault(r["agent"], {})[r["metric"]] = text
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.name = "agent"
    return out[[m for m in dict.fromkeys(lb["metric"])]] if len(lb) else out


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no ``tabulate`` needed)."""
    header = [table.index.name or "", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join([str(idx), *(str(v) for v in row)]) + " |")
    return "\n".join(lines) + "\n"


def write_tables(
    records: Sequence[dict[str, Any]],
    out_dir: str,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    lb: pd.DataFrame | None = None,
) -> dict[str, str]:
    """Write ``leaderboard.{csv,md,tex}``, ``per_task.csv`` and ``cells.csv`` to ``out_dir``; return paths."""
    os.makedirs(out_dir, exist_ok=True)
    lb = leaderboard(records, reps=reps, seed=seed) if lb is None else lb
    table = wide(lb)
    # Metrics as rows, agents as columns: a handful of columns fits a page.
    by_metric = table.T
    by_metric.index.name = "metric"
    by_metric.columns.name = None
    paths = {
        k: os.path.join(out_dir, n)
        for k, n in (
            ("csv", "leaderboard.csv"),
            ("md", "leaderboard.md"),
            ("tex", "leaderboard.tex"),
            ("per_task", "per_task.csv"),
            ("cells", "cells.csv"),
        )
    }
    lb.to_csv(paths["csv"], index=False)
    legend = "\n".join(f"- `{m}`: {METRICS[m].description}" for m in table.columns)
    with open(paths["md"], "w") as f:
        f.write(
            f"IQM over seeds and tasks with 95% stratified-bootstrap intervals (rliable, {reps} reps).\n\n"
        )
        f.write(to_markdown(by_metric) + "\n" + legend + "\n")
    with open(paths["tex"], "w") as f:
        f.write(
            by_metric.to_latex(
                escape=True,
                column_format="l" + "c" * by_metric.shape[1],
                caption=f"IQM [95\\% stratified-bootstrap CI] over seeds and tasks ({reps} bootstrap reps).",
                label="tab:safeadapt-leaderboard",
            )
        )
    per_task(records).to_csv(paths["per_task"], index=False)
    records_frame(records).to_csv(paths["cells"], index=False)
    return paths
