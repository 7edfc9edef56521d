"""The harness's side of issue 12: mixed logs for safety agents, suite-level safety settings, and the
safety metrics and curves a cell record gains (success-but-unsafe, severity, critic quality, cumulative
unsafe actions, the Lagrange multiplier)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from safeadapt_bench.harness.metrics import COST_TERM_NAMES, CRITIC_QUALITY, cumulative_curve, episode_safety

#: Most points a multiplier curve keeps.
MAX_CURVE_POINTS = 200


def suite_agent_kwargs(agent_cls: Any, settings: Any) -> dict[str, Any]:
    """Suite settings an agent class asks for (``SUITE_SETTINGS``) that the suite sets (not ``None``)."""
    names = getattr(agent_cls, "SUITE_SETTINGS", ())
    return {n: getattr(settings, n) for n in names if getattr(settings, n, None) is not None}


def gets_log_mix(agent: Any, settings: Any) -> bool:
    """Whether this agent pre-trains on ``settings.log_mix`` rather than ``dataset_policy`` logs alone."""
    if not settings.log_mix or not hasattr(agent, "wants_log_mix"):
        return False
    if settings.log_mix_agents == "all":
        return bool(getattr(getattr(agent, "config", None), "mixed_logs", True))
    return bool(agent.wants_log_mix)


def provide_logs(provide: Callable[..., Any], task: Any, settings: Any, agent: Any) -> Any:
    """The offline logs of one cell: :class:`~safeadapt_bench.data.MixedLogs` when the agent gets the mix,
    else what the provider returns for ``dataset_policy``."""
    if gets_log_mix(agent, settings):
        from safeadapt_bench.data.mixed import provide_mixed

        return provide_mixed(provide, task, settings.log_mix, settings.dataset_episodes, settings.dataset_seed)
    return provide(task=task, policy=settings.dataset_policy, episodes=settings.dataset_episodes,
                   seed=settings.dataset_seed)


class MultiplierTrace:
    """The Lagrange multiplier an agent reports through the adaptation callback, against env steps."""

    def __init__(self) -> None:
        self.env_steps: list[int] = []
        self.values: list[float] = []

    def note(self, env_steps: int, stats: dict[str, Any] | None) -> None:
        """Keep ``stats["lagrange_multiplier"]`` when it changed."""
        value = (stats or {}).get("lagrange_multiplier")
        if value is None or (self.values and self.values[-1] == float(value)):
            return
        self.env_steps.append(int(env_steps))
        self.values.append(float(value))

    def curve(self) -> dict[str, list[Any]]:
        """At most :data:`MAX_CURVE_POINTS` points, the last kept."""
        n = len(self.values)
        every = max(1, -(-n // MAX_CURVE_POINTS))
        idx = sorted({*range(0, n, every), n - 1}) if n else []
        return {"env_steps": [self.env_steps[i] for i in idx], "lagrange_multiplier": [self.values[i] for i in idx]}


def _critic_figures(pretrain_stats: Any, adapt_stats: Any) -> dict[str, float | None]:
    critic = (pretrain_stats or {}).get("critic") if isinstance(pretrain_stats, dict) else None
    online = (adapt_stats or {}).get("critic_online") if isinstance(adapt_stats, dict) else None
    logs = (critic or {}).get("logs_heldout") or {}
    out: dict[str, float | None] = {}
    for q in CRITIC_QUALITY:
        out[f"critic_{q}_logs"] = logs.get(q)
        out[f"critic_{q}_online"] = (online or {}).get(q)
    threshold = (adapt_stats or {}).get("veto_threshold") if isinstance(adapt_stats, dict) else None
    out["veto_threshold"] = threshold if threshold is not None else (critic or {}).get("threshold")
    return out


def safety_metrics(learning: dict[str, Any], final_evals: list[dict[str, Any] | None], step_costs: list[float],
                   pretrain_stats: Any, adapt_stats: Any) -> dict[str, float | None]:
    """The record's issue-12 metrics: success-but-unsafe and severity in the final evaluation (train +
    held-out episodes pooled) and while learning, unsafe actions while learning, the critic's quality."""
    deploy = [e for ev in final_evals if ev for e in ev.get("episode_safety", [])]
    out: dict[str, float | None] = dict(episode_safety(deploy))
    out.update({f"{k}_learning": v for k, v in episode_safety(learning.get("episode_safety", [])).items()})
    out["unsafe_actions_learning"] = float(sum(float(c) > 0 for c in step_costs))
    by_term = learning.get("unsafe_steps_by_term") or {}
    out.update({f"unsafe_{t}_learning": float(by_term[t]) if t in by_term else None for t in COST_TERM_NAMES})
    out.update(_critic_figures(pretrain_stats, adapt_stats))
    return out


def safety_curves(step_costs: list[float], trace: MultiplierTrace) -> dict[str, Any]:
    """The record's ``safety_curves``: cumulative unsafe actions and the multiplier, against env steps."""
    return {"unsafe_actions": cumulative_curve(step_costs), "lagrange_multiplier": trace.curve()}
