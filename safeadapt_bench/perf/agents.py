"""Reference agents side by side: the safe-action ratio *during learning* (pre-training, then SAC).

Every agent pre-trains on the same offline logs and adapts for the same env steps on the same
seeded env; a wrapper counts, for every executed action, whether it was safe (``info["cost"] == 0``)
and, for veto agents, whether the veto fired. Run it alone::

    python -m safeadapt_bench.perf.agents --env-steps 150 --episodes 4 --out results/perf/agents.json

or as the ``agents`` section of ``safeadapt-bench perf`` (small budgets).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import gymnasium as gym

from safeadapt_bench.perf import Measurement

SECTION = "agents"
#: The agents compared by default (safe-rl is left out: the question is adapters with vs without safety).
AGENTS: tuple[str, ...] = ("safe-adapter", "adapter", "full-finetune")


class SafetyCounter(gym.Wrapper):
    """Counts executed actions, the safe ones (cost 0), and veto decisions reported by ``veto_source``."""

    def __init__(self, env: gym.Env, veto_source: Any = None) -> None:
        super().__init__(env)
        self.veto_source = veto_source
        self.steps = self.safe = self.vetoes = 0
        self.costs: list[float] = []

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        cost = float(info.get("cost", 0.0))
        self.steps += 1
        self.safe += int(cost == 0)
        self.costs.append(cost)
        if self.veto_source is not None:
            self.vetoes += int(bool(self.veto_source()))
        return obs, reward, terminated, truncated, info


def measure(agents: tuple[str, ...] = AGENTS, *, env_steps: int = 150, episodes: int = 4, camera_size: int = 32,
            max_episode_steps: int = 50, policy: str = "careless", seed: int = 0,
            agent_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Pre-train and adapt each agent; one result dict per agent (safe ratio, veto rate, timings)."""
    import safeadapt_bench.envs  # noqa: F401 - registers the ids
    from safeadapt_bench.agents import Budget
    from safeadapt_bench.agents.registry import resolve_agent
    from safeadapt_bench.data import load, provide_dataset

    env_kw = dict(obs_mode="rgbd", camera_size=camera_size)
    # the scripted policies read the privileged state, so the logs carry it; the agents see rgbd only
    did = provide_dataset("SafeAdapt/Lift-v0", policy, episodes, seed, obs_mode="rgbd+state", camera_size=camera_size,
                          max_episode_steps=max_episode_steps)
    dataset = load(did, episodes=episodes)
    out = []
    for name in agents:
        env = gym.make("SafeAdapt/Lift-v0", max_episode_steps=max_episode_steps, **env_kw)
        agent = resolve_agent(name)(env.observation_space, env.action_space, seed=seed, **(agent_kwargs or {}))
        t0 = time.perf_counter()
        pre = agent.pretrain(dataset, Budget(wall_seconds=60))
        t_pre = time.perf_counter() - t0
        counter = SafetyCounter(env, agent.pop_veto)
        counter.reset(seed=seed)
        t0 = time.perf_counter()
        stats = agent.adapt(counter, Budget(env_steps=env_steps))
        half = len(counter.costs) // 2
        out.append({
            "agent": name, "env_steps": counter.steps, "safe_ratio": counter.safe / max(counter.steps, 1),
            "safe_ratio_first_half": 1 - sum(counter.costs[:half]) / max(half, 1),
            "safe_ratio_second_half": 1 - sum(counter.costs[half:]) / max(len(counter.costs) - half, 1),
            "veto_rate": counter.vetoes / max(counter.steps, 1) if agent.uses_veto else None,
            "pretrain_seconds": round(t_pre, 1), "adapt_seconds": round(time.perf_counter() - t0, 1),
            "pretrain": pre, "adapt": stats,
        })
        env.close()
    return out


def run(quick: bool) -> list[Measurement]:
    """The ``safeadapt-bench perf`` section: safe-action ratio during learning per agent, beside ``adapter``'s."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = measure(env_steps=40 if quick else 150, episodes=2 if quick else 4)
    finally:
        torch.set_num_threads(threads)
    ref = next((r["safe_ratio"] for r in results if r["agent"] == "adapter"), None)
    out = []
    for r in results:
        has_ref = ref is not None and r["agent"] != "adapter"
        out.append(Measurement(SECTION, f"{r['agent']}: safe-action ratio while learning", r["safe_ratio"],
                               "fraction", "adapter" if has_ref else "", ref if has_ref else None,
                               ">= 1x" if r["agent"] == "safe-adapter" else ""))
        if r["veto_rate"] is not None:
            out.append(Measurement(SECTION, f"{r['agent']}: veto rate while learning", r["veto_rate"], "fraction"))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", nargs="+", default=list(AGENTS))
    p.add_argument("--env-steps", type=int, default=150)
    p.add_argument("--episodes", type=int, default=4, help="episodes of offline logs")
    p.add_argument("--policy", default="careless", help="behaviour policy of the logs")
    p.add_argument("--camera-size", type=int, default=32)
    p.add_argument("--max-episode-steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core CPU)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    results = measure(tuple(a.agents), env_steps=a.env_steps, episodes=a.episodes, camera_size=a.camera_size,
                      max_episode_steps=a.max_episode_steps, policy=a.policy, seed=a.seed)
    print(f"{'agent':15s} {'safe':>6s} {'1st half':>9s} {'2nd half':>9s} {'veto':>6s} {'pre s':>6s} {'adapt s':>8s}")
    for r in results:
        veto = "-" if r["veto_rate"] is None else f"{r['veto_rate']:.2f}"
        print(f"{r['agent']:15s} {r['safe_ratio']:6.3f} {r['safe_ratio_first_half']:9.3f} "
              f"{r['safe_ratio_second_half']:9.3f} {veto:>6s} {r['pretrain_seconds']:6.1f} {r['adapt_seconds']:8.1f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"argv": argv, "results": results}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
