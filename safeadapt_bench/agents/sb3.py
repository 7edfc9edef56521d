"""Helpers for agents built on stable-baselines3 (imported only by such agents).

The harness evaluates an agent right after pre-training, before ``adapt`` has seen an env, so build the
SB3 model in ``__init__`` on a :class:`SpacesEnv` and swap in the real env in ``adapt``::

    def __init__(self, observation_space, action_space, *, seed=0, **kw):
        super().__init__(observation_space, action_space, seed=seed, **kw)
        stub = SpacesEnv(observation_space, action_space)
        self.model = PPO("MultiInputPolicy", DummyVecEnv([lambda: stub]))

    def adapt(self, env, budget, callback=None):
        self.model.set_env(DummyVecEnv([lambda: env]))  # the harness's monitored env (wrap it as you need)
        self.model.learn(budget.env_steps, callback=HarnessCallback(callback, budget))
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from stable_baselines3.common.callbacks import BaseCallback

from safeadapt_bench.agents.base import AdaptCallback
from safeadapt_bench.agents.budget import Budget


class HarnessCallback(BaseCallback):
    """An SB3 callback that forwards every step to the harness callback and enforces the wall-clock budget.

    Args:
        callback: the ``callback`` given to ``Agent.adapt`` (``None``: only the budget is enforced).
        budget: the adaptation budget (its ``wall_seconds`` stops training; SB3's ``total_timesteps``
            should be ``budget.env_steps``).
        stats_keys: entries of ``self.locals`` to pass on (e.g. ``("rewards",)``); ``None`` passes nothing.
    """

    def __init__(
        self,
        callback: AdaptCallback | None,
        budget: Budget | None = None,
        stats_keys: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        self.harness_callback = callback
        self.meter = (budget or Budget()).start()
        self.stats_keys = stats_keys

    def _on_step(self) -> bool:
        if self.meter.exhausted(env_steps=0):
            return False
        if self.harness_callback is None:
            return True
        stats: dict[str, Any] | None = None
        if self.stats_keys:
            stats = {k: self.locals.get(k) for k in self.stats_keys}
        return self.harness_callback(stats) is not False


class SpacesEnv(gym.Env):
    """An env that only carries spaces, to build an SB3 model before any real env exists."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        raise RuntimeError("SpacesEnv only carries spaces; call model.set_env(real_env) before learning.")

    def step(self, action: Any):
        raise RuntimeError("SpacesEnv only carries spaces; call model.set_env(real_env) before learning.")
