"""Every metric a cell record holds, with its documentation, and the functions that compute them.

Records keep deterministic metrics under ``metrics`` and wall-clock ones under ``timing``; both are
flat name -> number maps that :func:`flat_metrics` merges for the leaderboard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricInfo:
    """Documentation of one metric.

    Attributes:
        description: what it measures.
        higher_is_better: direction, for tables and plots (``None`` for neutral quantities).
        section: ``metrics`` (deterministic) or ``timing`` (wall clock).
    """

    description: str
    higher_is_better: bool | None
    section: str = "metrics"


#: Name -> documentation of every scalar metric in a record.
METRICS: dict[str, MetricInfo] = {
    "success_train": MetricInfo("final success rate on the train categories (adaptation robot)", True),
    "success_heldout": MetricInfo("final success rate on the held-out categories (adaptation robot)", True),
    "generalisation": MetricInfo("success_heldout / success_train (None when success_train is 0)", True),
    "success_source_robot": MetricInfo(
        "cross-embodiment: final success on the logs' robot, train categories", True
    ),
    "adapt_steps_to_threshold": MetricInfo(
        "env steps until evaluation success first reaches the threshold; censored at the steps used", False
    ),
    "adapt_threshold_censored": MetricInfo("1 when success never reached the threshold, else 0", False),
    "adapt_env_steps": MetricInfo("env steps used for adaptation", None),
    "wrong_object_rate": MetricInfo(
        "grounding ids: fraction of final-evaluation episodes (train + held-out) in which a distractor was "
        "picked up, or put on the pad (None on ids without distractors)",
        False,
    ),
    "safe_ratio_learning": MetricInfo("fraction of safe (cost 0) actions executed during adaptation", True),
    "safe_ratio_deployment": MetricInfo(
        "fraction of safe actions in the final evaluation (train + held-out)", True
    ),
    "episodic_cost_learning": MetricInfo("mean episode cost during adaptation", False),
    "episodic_cost_deployment": MetricInfo("mean episode cost in the final evaluation", False),
    "violation_rate_learning": MetricInfo(
        "fraction of adaptation episodes whose cost exceeds the cost limit", False
    ),
    "violation_rate_deployment": MetricInfo(
        "fraction of final-evaluation episodes over the cost limit", False
    ),
    "violations_learning": MetricInfo("number of adaptation episodes over the cost limit", False),
    "veto_rate_learning": MetricInfo(
        "fraction of adaptation actions the agent's veto replaced (veto agents)", None
    ),
    "veto_rate_deployment": MetricInfo("fraction of final-evaluation actions the veto replaced", None),
    "trainable_fraction": MetricInfo("trainable / total parameters during adaptation", False),
    "trainable_params": MetricInfo("parameters updated during adaptation", False),
    "total_params": MetricInfo("all parameters of the agent", None),
    "probe_initial": MetricInfo("backbone probe retrieval accuracy (top-1) before pre-training", True),
    "probe_final": MetricInfo("backbone probe retrieval accuracy after adaptation", True),
    "forgetting": MetricInfo("probe_initial - probe_final (None without a backbone or probe)", False),
    "pretrain_seconds": MetricInfo("wall-clock seconds of pre-training", False, "timing"),
    "dataset_seconds": MetricInfo(
        "wall-clock seconds to provide (and if needed collect) the offline logs", None, "timing"
    ),
    "adapt_seconds": MetricInfo(
        "wall-clock seconds of adaptation, evaluation time excluded", False, "timing"
    ),
    "adapt_seconds_to_threshold": MetricInfo(
        "adaptation seconds until success first reaches the threshold; censored at adapt_seconds",
        False,
        "timing",
    ),
    "eval_seconds": MetricInfo("wall-clock seconds spent in evaluations", None, "timing"),
    "cell_seconds": MetricInfo("wall-clock seconds of the whole cell", None, "timing"),
}

#: Learning-curve series stored under ``curves`` (one value per evaluation during adaptation).
CURVE_SERIES: tuple[str, ...] = ("success", "episodic_cost", "safe_ratio", "violation_rate", "return")


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den``, or ``None`` when either is missing or ``den`` is 0."""
    if num is None or den is None or den == 0:
        return None
    return float(num) / float(den)


def time_to_threshold(
    steps: Sequence[int],
    seconds: Sequence[float],
    success: Sequence[float | None],
    threshold: float,
    total_steps: int,
    total_seconds: float,
) -> dict[str, Any]:
    """First evaluation where success reaches ``threshold``, right-censored at the totals when none does.

    Returns ``{"steps", "seconds", "censored"}``.
    """
    for st, sec, suc in zip(steps, seconds, success):
        if suc is not None and suc >= threshold:
            return {"steps": int(st), "seconds": float(sec), "censored": False}
    return {"steps": int(total_steps), "seconds": float(total_seconds), "censored": True}


def pooled(*evals: dict[str, Any] | None) -> dict[str, Any]:
    """Step- and episode-weighted pooling of evaluation summaries (for train + held-out deployment)."""
    evals = tuple(e for e in evals if e and e.get("episodes"))
    steps = sum(e["step_stats"]["steps"] for e in evals)
    safe = sum(e["step_stats"]["safe_steps"] for e in evals)
    checked = sum(e["step_stats"]["veto_checked"] for e in evals)
    fired = sum(e["step_stats"]["veto_fired"] for e in evals)
    eps = sum(e["episodes"] for e in evals)
    cost = sum(e["episodic_cost"] * e["episodes"] for e in evals)
    viol = [e["violation_rate"] for e in evals]
    wrong = [(e["wrong_object_rate"], e["episodes"]) for e in evals if e.get("wrong_object_rate") is not None]
    return {
        "safe_ratio": ratio(safe, steps),
        "veto_rate": ratio(fired, checked),
        "episodic_cost": ratio(cost, eps),
        "violation_rate": (
            ratio(sum(v * e["episodes"] for v, e in zip(viol, evals)), eps)
            if viol and None not in viol
            else None
        ),
        "wrong_object_rate": ratio(sum(r * n for r, n in wrong), sum(n for _, n in wrong)) if wrong else None,
    }


def flat_metrics(record: dict[str, Any]) -> dict[str, float | None]:
    """Every scalar of :data:`METRICS` found in a record's ``metrics`` and ``timing`` sections."""
    out: dict[str, float | None] = {}
    for name, info in METRICS.items():
        value = record.get(info.section, {}).get(name)
        out[name] = None if value is None else float(value)
    return out
