"""Paper-ready figures (PNG and PDF, Agg backend) built from cell records alone.

Figures: learning curves (success and cost vs env steps and vs wall time, IQM with 95% bootstrap
bands), a safety/performance Pareto scatter, train vs held-out success bars, a per-category success
heat-map (train and held-out categories), adaptation-time bars, rliable interval estimates and
probability of improvement. Success axes span [0, 1] in every figure. Uncertainty (bands, error
bars, intervals) is drawn only for agents with at least :data:`MIN_SEEDS_FOR_BANDS` seeds: with
fewer, a bootstrap interval says little, so the point estimate stands alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from safeadapt_bench.harness.leaderboard import (
    DEFAULT_REPS,
    interval_estimates,
    leaderboard,
    records_frame,
    score_matrix,
    seeded_bootstrap,
)

#: Bootstrap replications for curve bands (one estimate per grid point, so fewer than for tables).
CURVE_REPS = 500
#: Grid points of interpolated learning curves.
GRID_POINTS = 21
#: Seeds (runs) an agent needs before a figure shows its uncertainty band, error bar or interval.
MIN_SEEDS_FOR_BANDS = 3
#: Axis limits of a success rate.
SUCCESS_LIMITS = (0.0, 1.0)


def _is_success(metric: str) -> bool:
    return metric.startswith("success")


def _plot_utils() -> Any:
    """``rliable.plot_utils`` (it imports pyplot, so after :func:`_pyplot` has chosen the backend)."""
    _pyplot()
    from rliable import plot_utils

    return plot_utils


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "savefig.bbox": "tight",
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
        }
    )
    return plt


#: Figure formats written, and the metadata each is saved with: no creation date, no producer version, so
#: that rebuilding a figure from the same records gives the same bytes (``make quick`` leaves no tracked
#: file modified). PNG keeps no ``Software`` key; PDF no ``CreationDate`` and a fixed ``Producer``; SVG
#: no ``Date`` (and a fixed id salt, ``svg.hashsalt``).
FIGURE_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": "safeadapt-bench", "Creator": "safeadapt-bench"},
    "svg": {"Date": None, "Creator": "safeadapt-bench"},
}
#: Formats :func:`make_plots` writes by default.
FIGURE_FORMATS: tuple[str, ...] = ("png", "pdf")


def _save(fig: Any, out_dir: str, name: str, formats: Sequence[str] = FIGURE_FORMATS) -> list[str]:
    """Write ``fig`` as ``out_dir/name.<ext>`` per format, with :data:`FIGURE_METADATA` (reproducible bytes)."""
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    with plt.rc_context({"svg.hashsalt": "safeadapt-bench"}):
        for ext in formats:
            path = os.path.join(out_dir, f"{name}.{ext}")
            fig.savefig(path, dpi=200, metadata=FIGURE_METADATA[ext])
            paths.append(path)
    plt.close(fig)
    return paths


def _colors(agents: Sequence[str]) -> dict[str, Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return {a: cmap(i % 10) for i, a in enumerate(agents)}


def curve_scores(
    records: Sequence[dict[str, Any]], series: str, x: str = "env_steps", grid_points: int = GRID_POINTS
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Learning curves on a common grid: ``(grid, {agent: (runs x tasks x grid) scores})``.

    ``x`` is ``env_steps`` or ``wall`` (adaptation seconds, evaluation excluded). Each run is linearly
    interpolated onto the grid and held at its last value beyond its end.
    """
    runs: dict[str, dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]] = {}
    xmax = 0.0
    for r in records:
        xs = r["curves"]["env_steps"] if x == "env_steps" else r["timing"]["curve_wall_seconds"]
        ys = r["curves"][series]
        pts = [(a, b) for a, b in zip(xs, ys) if b is not None]
        if not pts:
            continue
        xa, ya = (np.asarray(v, dtype=float) for v in zip(*pts))
        xmax = max(xmax, float(xa.max()))
        cfg = r["config"]
        task = f"{cfg['task']['task']}-{cfg['task']['robot']}-{cfg['task'].get('target_robot')}"
        runs.setdefault(cfg["agent"], {}).setdefault(task, {})[int(cfg["seed"])] = (xa, ya)
    grid = np.linspace(0.0, xmax or 1.0, grid_points)
    out = {}
    for agent, tasks in runs.items():
        seeds = sorted(set.intersection(*(set(s) for s in tasks.values())))
        if not seeds:
            continue
        arr = np.empty((len(seeds), len(tasks), grid_points))
        for j, task in enumerate(sorted(tasks)):
            for i, seed in enumerate(seeds):
                xa, ya = tasks[task][seed]
                arr[i, j] = np.interp(grid, xa, ya)
        out[agent] = arr
    return grid, out


def _iqm_per_column(scores: np.ndarray) -> np.ndarray:
    """rliable's IQM (``aggregate_iqm`` = ``scipy.stats.trim_mean(..., 0.25)`` over runs and tasks) at each
    grid point of a ``(runs x tasks x grid)`` array, vectorised over the grid."""
    from scipy.stats import trim_mean

    return trim_mean(scores.reshape(-1, scores.shape[-1]), 0.25, axis=0)


def plot_learning_curves(
    records: Sequence[dict[str, Any]], out_dir: str, reps: int = CURVE_REPS
) -> list[str]:
    """``learning_curves_steps`` and ``learning_curves_wall``: success and episodic cost, IQM + 95% band."""
    plt = _pyplot()
    pu = _plot_utils()
    from rliable import library
    paths = []
    agents = list(dict.fromkeys(r["config"]["agent"] for r in records))
    colors = _colors(agents)
    for x, xlabel in (("env_steps", "adaptation env steps"), ("wall", "adaptation wall time (s)")):
        fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8))
        for ax, (series, ylabel) in zip(
            axes, (("success", "success rate"), ("episodic_cost", "episode cost"))
        ):
            grid, scores = curve_scores(records, series, x)
            if not scores:
                ax.set_axis_off()
                continue
            func = _iqm_per_column
            with seeded_bootstrap(0) as random_state:
                point, interval = library.get_interval_estimates(
                    scores, func, reps=reps, random_state=random_state
                )
            for agent, arr in scores.items():  # no band from fewer than MIN_SEEDS_FOR_BANDS runs
                if arr.shape[0] < MIN_SEEDS_FOR_BANDS:
                    interval[agent] = np.stack([point[agent], point[agent]])
            pu.plot_sample_efficiency_curve(
                grid,
                point,
                interval,
                algorithms=list(scores),
                colors=colors,
                xlabel=xlabel,
                ylabel=ylabel,
                ax=ax,
                labelsize="medium",
                ticklabelsize="small",
                marker="",
                linewidth=1.5,
            )
            if series == "success":
                ax.set_ylim(*SUCCESS_LIMITS)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(
                handles,
                labels,
                loc="upper center",
                ncol=min(4, len(labels)),
                frameon=False,
                bbox_to_anchor=(0.5, 1.08),
            )
        fig.tight_layout()
        paths += _save(fig, out_dir, f"learning_curves_{'steps' if x == 'env_steps' else 'wall'}")
    return paths


def _lb_get(lb: Any, agent: str, metric: str) -> tuple[float, float, float]:
    """``(iqm, ci_low, ci_high)`` of a leaderboard row; the interval collapses onto the IQM when the row
    has fewer than :data:`MIN_SEEDS_FOR_BANDS` runs (no error bar is drawn then)."""
    row = lb[(lb["agent"] == agent) & (lb["metric"] == metric)]
    if row.empty:
        return np.nan, np.nan, np.nan
    r = row.iloc[0]
    point = float(r["iqm"])
    if "n_runs" in r and not float(r["n_runs"]) >= MIN_SEEDS_FOR_BANDS:
        return point, point, point
    return point, float(r["ci_low"]), float(r["ci_high"])


def plot_pareto(
    lb: Any, out_dir: str, x_metric: str = "episodic_cost_deployment", y_metric: str = "success_heldout"
) -> list[str]:
    """Safety/performance scatter (IQM with 95% CIs), the Pareto front (low cost, high success) dashed."""
    plt = _pyplot()
    agents = list(dict.fromkeys(lb["agent"]))
    colors = _colors(agents)
    fig, ax = plt.subplots(figsize=(3.6, 3.0))
    pts = []
    for a in agents:
        (x, xl, xh), (y, yl, yh) = _lb_get(lb, a, x_metric), _lb_get(lb, a, y_metric)
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        ax.errorbar(
            x,
            y,
            xerr=[[x - xl], [xh - x]],
            yerr=[[y - yl], [yh - y]],
            fmt="o",
            color=colors[a],
            capsize=2,
            label=a,
        )
        pts.append((x, y))
    front, best = [], -np.inf
    for x, y in sorted(pts, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    if len(front) > 1:
        ax.step(*zip(*front), where="post", ls="--", color="0.5", lw=1)
    ax.set_xlabel(x_metric.replace("_", " "))
    ax.set_ylabel(y_metric.replace("_", " "))
    if _is_success(x_metric):
        ax.set_xlim(*SUCCESS_LIMITS)
    if _is_success(y_metric):
        ax.set_ylim(*SUCCESS_LIMITS)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return _save(fig, out_dir, "pareto")


def plot_generalisation(lb: Any, out_dir: str) -> list[str]:
    """Train vs held-out success per agent (IQM bars with 95% CIs)."""
    plt = _pyplot()
    agents = list(dict.fromkeys(lb["agent"]))
    fig, ax = plt.subplots(figsize=(max(3.0, 0.9 * len(agents) + 1.0), 2.8))
    width = 0.38
    for k, (metric, label) in enumerate(
        (("success_train", "train categories"), ("success_heldout", "held-out categories"))
    ):
        vals = np.array([_lb_get(lb, a, metric) for a in agents])
        xs = np.arange(len(agents)) + (k - 0.5) * width
        err = np.nan_to_num(np.stack([vals[:, 0] - vals[:, 1], vals[:, 2] - vals[:, 0]]))
        ax.bar(xs, np.nan_to_num(vals[:, 0]), width, yerr=err, capsize=2, label=label, color=f"C{k}")
    ax.set_xticks(np.arange(len(agents)), agents, rotation=20, ha="right")
    ax.set_ylabel("final success rate (IQM)")
    ax.set_ylim(*SUCCESS_LIMITS)
    ax.legend(frameon=False)
    return _save(fig, out_dir, "generalisation")


#: The final evaluations the category heat-map shows, with their column-group labels.
CATEGORY_SPLITS: tuple[tuple[str, str], ...] = (("train", "train"), ("heldout", "held-out"))


def category_success(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[tuple[str, str]], np.ndarray]:
    """Final success per agent and category: ``(agents, columns, table)``.

    ``columns`` are ``(split label, category)`` pairs, the train categories first, then the held-out ones
    (prefixed by the task where a suite has several tasks); ``table[i, j]`` is the mean success of agent
    ``i`` on column ``j`` over its seeds (``evaluations.<split>.success_by_category``), NaN where the agent
    has no episode of that category.
    """
    agents = list(dict.fromkeys(r["config"]["agent"] for r in records))
    tasks = list(dict.fromkeys(r["config"]["task"]["task"] for r in records))
    values: dict[tuple[str, tuple[str, str]], list[float]] = {}
    columns: dict[str, list[tuple[str, str]]] = {label: [] for _, label in CATEGORY_SPLITS}
    for r in records:
        task = r["config"]["task"]["task"]
        for split, label in CATEGORY_SPLITS:
            by_cat = ((r.get("evaluations") or {}).get(split) or {}).get("success_by_category") or {}
            for cat, v in by_cat.items():
                col = (label, cat if len(tasks) == 1 else f"{task}/{cat}")
                if col not in columns[label]:
                    columns[label].append(col)
                if v is not None:
                    values.setdefault((r["config"]["agent"], col), []).append(float(v))
    cols = [c for label in columns for c in sorted(columns[label], key=lambda c: c[1])]
    table = np.full((len(agents), len(cols)), np.nan)
    for i, a in enumerate(agents):
        for j, c in enumerate(cols):
            if values.get((a, c)):
                table[i, j] = float(np.mean(values[(a, c)]))
    return agents, cols, table


def plot_category_success(records: Sequence[dict[str, Any]], out_dir: str) -> list[str]:
    """``category_success``: heat-map of final success per agent (rows) and category (columns), train
    categories then held-out ones, colour scale fixed to [0, 1], each cell annotated with its value."""
    agents, cols, table = category_success(records)
    if not cols:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(3.5, 0.55 * len(cols) + 2.0), max(1.6, 0.4 * len(agents) + 1.1)))
    image = ax.imshow(np.ma.masked_invalid(table), cmap="viridis", vmin=SUCCESS_LIMITS[0], vmax=SUCCESS_LIMITS[1],
                      aspect="auto")
    for i in range(len(agents)):
        for j in range(len(cols)):
            if np.isfinite(table[i, j]):
                ax.text(j, i, f"{table[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if table[i, j] < 0.6 else "black")
    ax.set_xticks(np.arange(len(cols)), [c for _, c in cols], rotation=45, ha="right")
    ax.set_yticks(np.arange(len(agents)), agents)
    n_train = sum(1 for label, _ in cols if label == CATEGORY_SPLITS[0][1])
    if 0 < n_train < len(cols):
        ax.axvline(n_train - 0.5, color="white", lw=2)
    for label in dict.fromkeys(lbl for lbl, _ in cols):
        idx = [j for j, (lbl, _) in enumerate(cols) if lbl == label]
        ax.text(float(np.mean(idx)), -0.7, f"{label} categories", ha="center", va="bottom", fontsize=8)
    fig.colorbar(image, ax=ax, label="final success rate", fraction=0.05, pad=0.02)
    return _save(fig, out_dir, "category_success")


def plot_adaptation_time(lb: Any, df: Any, out_dir: str) -> list[str]:
    """Env steps and seconds to the success threshold (IQM, 95% CI); labels give the censored share."""
    plt = _pyplot()
    agents = list(dict.fromkeys(lb["agent"]))
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8))
    for ax, metric, label in (
        (axes[0], "adapt_steps_to_threshold", "env steps to threshold"),
        (axes[1], "adapt_seconds_to_threshold", "seconds to threshold"),
    ):
        vals = np.array([_lb_get(lb, a, metric) for a in agents])
        err = np.nan_to_num(np.stack([vals[:, 0] - vals[:, 1], vals[:, 2] - vals[:, 0]]))
        bars = ax.bar(
            np.arange(len(agents)),
            np.nan_to_num(vals[:, 0]),
            yerr=err,
            capsize=2,
            color=[f"C{i}" for i in range(len(agents))],
        )
        for bar, a in zip(bars, agents):
            cens = df.loc[df["agent"] == a, "adapt_threshold_censored"].mean()
            ax.annotate(
                f"{cens:.0%} cens.",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 2),
                textcoords="offset points",
            )
        ax.set_xticks(np.arange(len(agents)), agents, rotation=20, ha="right")
        ax.set_ylabel(label + " (IQM)")
    fig.tight_layout()
    return _save(fig, out_dir, "adaptation_time")


#: Metrics in the rliable interval-estimate figure.
INTERVAL_METRICS: tuple[tuple[str, str], ...] = (
    ("success_train", "Success (train)"),
    ("success_heldout", "Success (held-out)"),
    ("safe_ratio_deployment", "Safe-action ratio"),
    ("episodic_cost_deployment", "Episode cost"),
)


def plot_intervals(records: Sequence[dict[str, Any]], out_dir: str, reps: int = DEFAULT_REPS) -> list[str]:
    """rliable ``plot_interval_estimates``: IQM and 95% CIs of the headline metrics."""
    plt = _pyplot()
    pu = _plot_utils()
    df = records_frame(records)
    agents = list(dict.fromkeys(df["agent"]))
    names = [(m, n) for m, n in INTERVAL_METRICS if df[m].notna().any()]
    point = {a: np.full(len(names), np.nan) for a in agents}
    interval = {a: np.full((2, len(names)), np.nan) for a in agents}
    for j, (m, _) in enumerate(names):
        for a in agents:
            scores = score_matrix(df, a, m)
            if scores.size:
                p, i = interval_estimates({a: scores}, reps=reps)
                point[a][j] = p[a][0]
                interval[a][:, j] = i[a][:, 0] if scores.shape[0] >= MIN_SEEDS_FOR_BANDS else p[a][0]
    row_height = max(0.45, 1.8 / len(agents))
    fig, axes = pu.plot_interval_estimates(
        point,
        interval,
        metric_names=[n for _, n in names],
        algorithms=agents,
        colors=_colors(agents),
        xlabel="IQM",
        subfigure_width=3.0,
        row_height=row_height,
        xlabel_y_coordinate=-0.5 / (row_height * len(agents)),
    )
    from matplotlib.ticker import MaxNLocator

    for ax, (m, _) in zip(np.atleast_1d(axes), names):
        ax.xaxis.set_major_locator(MaxNLocator(3))
        if _is_success(m):
            ax.set_xlim(*SUCCESS_LIMITS)
            ax.set_xticks([0.0, 0.5, 1.0])
    fig.subplots_adjust(wspace=0.3)  # neighbouring panels' end labels stay apart
    paths = _save(fig, out_dir, "interval_estimates")
    plt.close("all")
    return paths


def plot_probability_of_improvement(
    records: Sequence[dict[str, Any]], out_dir: str, metric: str = "success_heldout", reps: int = DEFAULT_REPS
) -> list[str]:
    """rliable probability of improvement of the first agent over each other one (95% CIs)."""
    plt = _pyplot()
    pu = _plot_utils()
    from rliable import library, metrics
    df = records_frame(records)
    agents = list(dict.fromkeys(df["agent"]))
    if len(agents) < 2:
        return []
    pairs = {}
    for other in agents[1:]:
        x, y = score_matrix(df, agents[0], metric), score_matrix(df, other, metric)
        if x.size and y.size and x.shape[1] == y.shape[1]:
            pairs[f"{agents[0]},{other}"] = (x, y)
    if not pairs:
        return []
    with seeded_bootstrap(0) as random_state:
        point, interval = library.get_interval_estimates(
            pairs, metrics.probability_of_improvement, reps=reps, random_state=random_state
        )
    for pair, (x, y) in pairs.items():  # no interval from fewer than MIN_SEEDS_FOR_BANDS runs a side
        if min(x.shape[0], y.shape[0]) < MIN_SEEDS_FOR_BANDS:
            interval[pair] = np.stack([point[pair], point[pair]])
    fig, ax = plt.subplots(figsize=(4.0, 0.5 + 0.45 * len(pairs)))
    pu.plot_probability_of_improvement(
        point,
        interval,
        ax=ax,
        xlabel=f"P(X > Y), {metric.replace('_', ' ')}",
        colors=[f"C{i}" for i in range(len(pairs))],
        ticklabelsize="small",
        labelsize="medium",
    )
    return _save(fig, out_dir, "probability_of_improvement")


def make_plots(
    records: Sequence[dict[str, Any]], out_dir: str, reps: int = DEFAULT_REPS, lb: Any = None
) -> dict[str, list[str]]:
    """Every figure; returns name -> written paths."""
    lb = leaderboard(records, reps=reps) if lb is None else lb
    df = records_frame(records)
    return {
        "learning_curves": plot_learning_curves(records, out_dir, reps=min(reps, CURVE_REPS)),
        "pareto": plot_pareto(lb, out_dir),
        "generalisation": plot_generalisation(lb, out_dir),
        "category_success": plot_category_success(records, out_dir),
        "adaptation_time": plot_adaptation_time(lb, df, out_dir),
        "interval_estimates": plot_intervals(records, out_dir, reps=reps),
        "probability_of_improvement": plot_probability_of_improvement(records, out_dir, reps=reps),
        "safety_while_learning": plot_safety_while_learning(records, out_dir),
    }


def plot_safety_while_learning(records: Sequence[dict[str, Any]], out_dir: str) -> list[str]:
    """``safety_while_learning``: cumulative unsafe actions vs adaptation env steps (mean over runs, band
    from the fewest to the most) and, for Lagrangian agents, the multiplier of every run (issue 12)."""
    plt = _pyplot()
    agents = list(dict.fromkeys(r["config"]["agent"] for r in records))
    colors = _colors(agents)
    fig, (ax_u, ax_l) = plt.subplots(1, 2, figsize=(7.0, 2.8))
    runs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for r in records:
        c = (r.get("safety_curves") or {}).get("unsafe_actions")
        if c and len(c["env_steps"]) > 1:
            runs.setdefault(r["config"]["agent"], []).append((np.asarray(c["env_steps"], float),
                                                              np.asarray(c["unsafe_actions"], float)))
    xmax = max((x[-1] for rs in runs.values() for x, _ in rs), default=1.0)
    grid = np.linspace(0.0, xmax, GRID_POINTS * 3)
    for agent, rs in runs.items():
        ys = np.stack([np.interp(grid, x, y) for x, y in rs])
        ax_u.plot(grid, ys.mean(0), color=colors[agent], label=f"{agent} ({len(rs)} runs)", linewidth=1.5)
        ax_u.fill_between(grid, ys.min(0), ys.max(0), color=colors[agent], alpha=0.2, linewidth=0)
    ax_u.set(xlabel="adaptation env steps", ylabel="cumulative unsafe actions")
    if runs:
        ax_u.legend(frameon=False)
    lagr = False
    for r in records:
        m = (r.get("safety_curves") or {}).get("lagrange_multiplier") or {}
        if m.get("env_steps"):
            lagr = True
            ax_l.plot(m["env_steps"], m["lagrange_multiplier"], color=colors[r["config"]["agent"]], linewidth=1,
                      label=f"{r['config']['agent']} seed {r['config']['seed']}")
    ax_l.set(xlabel="adaptation env steps", ylabel="Lagrange multiplier")
    if lagr:
        ax_l.legend(frameon=False)
    else:
        ax_l.text(0.5, 0.5, "no Lagrangian agent", ha="center", va="center", transform=ax_l.transAxes)
    fig.tight_layout()
    return _save(fig, out_dir, "safety_while_learning")
