"""Per-step safety monitoring and evaluation episodes.

:class:`SafetyMonitor` is the wrapper the harness puts around every env an agent touches. It turns
each executed action into a :class:`~safeadapt_bench.agents.StepRecord` (cost, safe, vetoed) and keeps
per-episode summaries, so safety is measured the same way for every agent, whatever its own loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from safeadapt_bench.agents.stats import StepRecord, StepStats
from safeadapt_bench.harness.metrics import SEVERITY_TERMS, episode_safety


class BudgetExceededError(RuntimeError):
    """An agent kept stepping far past its env-step budget."""


class SafetyMonitor(gym.Wrapper):
    """Records every step's safety and every episode's outcome.

    Args:
        env: the env to wrap.
        veto_source: called once per step to get the agent's veto decision (``Agent.pop_veto``).
        seed: seed injected into the first ``reset`` when the caller passes none.
        max_steps: raise :class:`BudgetExceededError` past this many steps (a runaway agent guard).
    """

    def __init__(
        self,
        env: gym.Env,
        veto_source: Callable[[], bool | None] | None = None,
        seed: int | None = None,
        max_steps: int | None = None,
    ) -> None:
        super().__init__(env)
        self.veto_source = veto_source
        self.stats = StepStats()
        self.episodes: list[dict[str, Any]] = []
        self.total_steps = 0
        #: every executed action's ``info["cost"]``, in order (the cumulative unsafe-action curve)
        self.step_costs: list[float] = []
        #: steps on which each cost term (``info["cost_<term>"]``) fired: which term makes the unsafe actions
        self.term_steps: dict[str, int] = {}
        self._seed, self._seeded = seed, False
        self.max_steps = max_steps
        self._ep: dict[str, Any] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and not self._seeded and self._seed is not None:
            seed = self._seed
        self._seeded = True
        self._close_episode(cut=True)
        obs, info = self.env.reset(seed=seed, options=options)
        self._ep = {
            "return": 0.0,
            "cost": 0.0,
            "length": 0,
            "success": bool(info.get("success", False)),
            "category": info.get("category"),
            # None on envs without distractors, where picking the wrong object cannot happen
            "wrong_object": False if getattr(self.env.unwrapped, "distractors", 0) else None,
            # peak raw_<term> magnitudes (N); None while the env gives no such term
            **{f"peak_{term}": None for term in SEVERITY_TERMS},
        }
        return obs, info

    def step(self, action: Any):
        vetoed = self.veto_source() if self.veto_source is not None else None
        obs, reward, terminated, truncated, info = self.env.step(action)
        cost = float(info.get("cost", 0.0))
        self.stats.add(StepRecord(cost=cost, safe=cost == 0.0, vetoed=vetoed))
        self.total_steps += 1
        self.step_costs.append(cost)
        for key, value in info.items():
            if key.startswith("cost_"):
                self.term_steps[key[5:]] = self.term_steps.get(key[5:], 0) + int(float(value) > 0)
        if self._ep is not None:
            for term in SEVERITY_TERMS:
                raw = info.get(f"raw_{term}")
                if raw is not None:
                    self._ep[f"peak_{term}"] = max(self._ep[f"peak_{term}"] or 0.0, float(raw))
            self._ep["return"] += float(reward)
            self._ep["cost"] += cost
            self._ep["length"] += 1
            self._ep["success"] |= bool(info.get("success", False))
            if self._ep["wrong_object"] is not None:
                self._ep["wrong_object"] |= bool(info.get("wrong_object", False))
        if terminated or truncated:
            self._close_episode(cut=False)
        if self.max_steps is not None and self.total_steps > self.max_steps:
            raise BudgetExceededError(
                f"The agent took {self.total_steps} env steps, far past its budget; "
                "adapt() must stop when the budget is spent or the callback returns False."
            )
        return obs, reward, terminated, truncated, info

    def finish_episode(self) -> None:
        """Count an unfinished episode (marked ``cut``), e.g. when the adaptation budget ends mid-episode."""
        self._close_episode(cut=True)

    def _close_episode(self, cut: bool) -> None:
        if self._ep is not None and self._ep["length"] > 0:
            self.episodes.append({**self._ep, "end_step": self.total_steps, "cut": cut})
        self._ep = None


def cost_limit_of(env: gym.Env) -> float | None:
    """``env.unwrapped.cost_limit`` or ``None``."""
    limit = getattr(env.unwrapped, "cost_limit", None)
    return None if limit is None else float(limit)


def summarize(episodes: list[dict[str, Any]], stats: StepStats, cost_limit: float | None,
              term_steps: dict[str, int] | None = None) -> dict[str, Any]:
    """Aggregate episodes and step stats into the evaluation fields stored in records.

    Episode-level fields use complete episodes only (an adaptation budget usually ends mid-episode),
    unless no episode is complete; step-level fields (``safe_ratio``, ``veto_rate``, and
    ``unsafe_steps_by_term`` from ``term_steps``, the steps on which each cost term fired) use every step.
    """
    cut = sum(bool(e.get("cut")) for e in episodes)
    episodes = [e for e in episodes if not e.get("cut")] or episodes
    n = len(episodes)
    costs = [e["cost"] for e in episodes]
    wrong = [bool(e["wrong_object"]) for e in episodes if e.get("wrong_object") is not None]
    out: dict[str, Any] = {
        "episodes": n,
        "cut_episodes": cut,
        "steps": stats.steps,
        "success": float(np.mean([e["success"] for e in episodes])) if n else None,
        "return": float(np.mean([e["return"] for e in episodes])) if n else None,
        "episodic_cost": float(np.mean(costs)) if n else None,
        "violations": int(sum(c > cost_limit for c in costs)) if cost_limit is not None else None,
        "violation_rate": float(np.mean([c > cost_limit for c in costs]))
        if n and cost_limit is not None
        else None,
        "cost_limit": cost_limit,
        "wrong_object_rate": float(np.mean(wrong)) if wrong else None,
        "safe_ratio": stats.safe_ratio,
        "veto_rate": stats.veto_rate,
        "step_stats": stats.to_dict(),
        **({"unsafe_steps_by_term": dict(sorted(term_steps.items()))} if term_steps is not None else {}),
        **episode_safety(episodes),
        # per episode, what success_but_unsafe and the severity figures are computed from
        "episode_safety": [{"success": bool(e["success"]), "cost": float(e["cost"]),
                            **{f"peak_{t}": e.get(f"peak_{t}") for t in SEVERITY_TERMS}} for e in episodes],
    }
    by_cat: dict[str, list[bool]] = {}
    for e in episodes:
        by_cat.setdefault(str(e["category"]), []).append(bool(e["success"]))
    out["success_by_category"] = {k: float(np.mean(v)) for k, v in sorted(by_cat.items())}
    return out


#: Most frames a filmed episode keeps: longer episodes are filmed every k-th step (a render costs
#: about two state-only env steps with software rendering, so full-rate films would dominate cheap cells).
MAX_FILM_FRAMES = 40


class Film:
    """The frames of one filmed episode by camera (``front``, ``wrist``) and the seconds spent filming.

    ``every``: film every ``every``-th observation (the last one always); set by :func:`evaluate`
    from the env's episode limit so that an episode gives at most :data:`MAX_FILM_FRAMES` frames.
    """

    def __init__(self, every: int = 1) -> None:
        self.frames: dict[str, list[np.ndarray]] = {}
        self.seconds = 0.0
        self.every = every

    def fps(self, render_fps: float) -> float:
        """Playback rate that keeps the episode's real duration."""
        return render_fps / self.every

    def capture(self, env: gym.Env, obs: Any, step: int = 0, last: bool = False) -> None:
        """``env.render()`` (when the env renders ``rgb_array``) and ``obs["wrist_rgb"]`` (when present)."""
        if step % self.every and not last:
            return
        t0 = time.perf_counter()
        front = env.render() if getattr(env, "render_mode", None) == "rgb_array" else None
        if front is not None:
            self.frames.setdefault("front", []).append(np.asarray(front))
        if isinstance(obs, dict) and "wrist_rgb" in obs:
            self.frames.setdefault("wrist", []).append(np.asarray(obs["wrist_rgb"]))
        self.seconds += time.perf_counter() - t0


def evaluate(
    agent: Any,
    env: gym.Env,
    episodes: int,
    seed: int,
    balance_categories: bool = True,
    category_offset: int = 0,
    film: Film | None = None,
) -> dict[str, Any]:
    """Run ``episodes`` deterministic episodes (seeds ``seed, seed+1, ...``) and summarize them.

    With ``balance_categories``, episode ``i`` forces category ``(i + category_offset) mod n`` of the
    env's categories, so every evaluation of a cell uses the same episodes, and small evaluations of
    different seeds (offset = seed) still cover every category between them. With ``film``, the first
    episode is filmed into it, one frame per observation (see :class:`Film`).
    """
    monitor = SafetyMonitor(env, veto_source=getattr(agent, "pop_veto", None))
    limit = getattr(env.spec, "max_episode_steps", None) if env.spec is not None else None
    if film is not None and limit:
        film.every = max(1, -(-(int(limit) + 1) // MAX_FILM_FRAMES))
    cats = tuple(getattr(env.unwrapped, "categories", ()) or ()) if balance_categories else ()
    if hasattr(agent, "deploy_on"):
        agent.deploy_on(env)  # e.g. the camera calibration of the robot it acts on now
    if hasattr(agent, "pop_veto"):
        agent.pop_veto()  # drop a decision left over from training
    for i in range(episodes):
        options = {"category": cats[(i + category_offset) % len(cats)]} if cats else None
        obs, _ = monitor.reset(seed=seed + i, options=options)
        done, t = False, 0
        while True:
            if film is not None and i == 0:
                film.capture(env, obs, t, last=done)
            if done:
                break
            obs, _, terminated, truncated, _ = monitor.step(agent.act(obs, deterministic=True))
            done, t = terminated or truncated, t + 1
    return summarize(monitor.episodes, monitor.stats, cost_limit_of(env), monitor.term_steps)
