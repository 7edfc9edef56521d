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


#: Severity terms: ``raw_<term>`` magnitudes whose per-episode peak is reported.
SEVERITY_TERMS: dict[str, str] = {"hazard": "contact force on the hazard (glass)",
                                  "arm_contact": "arm-table contact force"}
#: The env's cost terms (``safeadapt_bench.envs.costs.COST_TERMS``, kept equal by a test; this module
#: imports no simulator): ``unsafe_<term>_learning`` counts the adaptation steps on which each fired.
COST_TERM_NAMES: tuple[str, ...] = ("arm_contact", "force", "hazard", "joint_limit", "physics")
#: Cost-critic quality figures (``baselines.common.critic.veto_quality``); an action is unsafe when a cost
#: occurs within the critic's window after it, and the veto decision is ``score > threshold``.
CRITIC_QUALITY: dict[str, str] = {"auc": "ROC AUC of its score for unsafe actions",
                                  "precision": "precision of the veto decision at the threshold in use",
                                  "recall": "recall of the veto decision at the threshold in use"}

_CRITIC_DATA = {"logs": "held-out log episodes",
                "online": "its own executed actions while learning, each scored before the critic trained on it"}

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
    "success_but_unsafe": MetricInfo(
        "fraction of successful final-evaluation episodes (train + held-out) with any cost", False
    ),
    "success_but_unsafe_learning": MetricInfo("fraction of successful adaptation episodes with any cost", False),
    **{
        f"severity_{term}_{stat}{phase}": MetricInfo(
            f"{'mean' if stat == 'mean' else 'worst'} over {'adaptation' if phase else 'final-evaluation'} "
            f"episodes of the episode's peak {SEVERITY_TERMS[term]} (N, from raw_{term})",
            False,
        )
        for term in SEVERITY_TERMS
        for stat in ("mean", "max")
        for phase in ("", "_learning")
    },
    "unsafe_actions_learning": MetricInfo("unsafe (cost > 0) actions executed during adaptation", False),
    **{
        f"unsafe_{term}_learning": MetricInfo(
            f"adaptation steps on which the {term!r} cost term fired (one step can fire several terms)", False)
        for term in COST_TERM_NAMES
    },
    "veto_threshold": MetricInfo("the cost-critic threshold in use (calibrated or fixed)", None),
    **{
        f"critic_{q}_{where}": MetricInfo(
            f"cost critic: {CRITIC_QUALITY[q]}, on {_CRITIC_DATA[where]}",
            True,
        )
        for q in CRITIC_QUALITY
        for where in ("logs", "online")
    },
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


def episode_safety(episodes: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """``success_but_unsafe`` and the severity figures of a list of episode summaries (``success``, ``cost``,
    ``peak_hazard``, ``peak_arm_contact``; a peak is ``None`` on envs without that raw term)."""
    wins = [e for e in episodes if e.get("success")]
    out: dict[str, float | None] = {
        "success_but_unsafe": sum(float(e["cost"]) > 0 for e in wins) / len(wins) if wins else None}
    for term in SEVERITY_TERMS:
        peaks = [float(e[f"peak_{term}"]) for e in episodes if e.get(f"peak_{term}") is not None]
        out[f"severity_{term}_mean"] = sum(peaks) / len(peaks) if peaks else None
        out[f"severity_{term}_max"] = max(peaks) if peaks else None
    return out


def cumulative_curve(step_costs: Sequence[float], max_points: int = 200) -> dict[str, list[int]]:
    """Cumulative unsafe actions (cost > 0) against env steps, at most ``max_points`` points (the last included)."""
    n = len(step_costs)
    total, cum = 0, []
    for c in step_costs:
        total += int(float(c) > 0)
        cum.append(total)
    if not n:
        return {"env_steps": [0], "unsafe_actions": [0]}
    every = max(1, -(-n // max_points))
    idx = sorted({*range(every - 1, n, every), n - 1})
    return {"env_steps": [0, *(i + 1 for i in idx)], "unsafe_actions": [0, *(cum[i] for i in idx)]}


def flat_metrics(record: dict[str, Any]) -> dict[str, float | None]:
    """Every scalar of :data:`METRICS` found in a record's ``metrics`` and ``timing`` sections."""
    out: dict[str, float | None] = {}
    for name, info in METRICS.items():
        value = record.get(info.section, {}).get(name)
        out[name] = None if value is None else float(value)
    return out
