"""A wrapper that puts an agent's safety veto between its policy and the env, and reports it.

Agents whose training loop they do not own (stable-baselines3) can still veto actions: wrap the env
the harness gives ``adapt`` in :class:`VetoWrapper`; every executed action then goes through
``shield`` and the decision reaches the harness through ``Agent.note_veto``::

    def adapt(self, env, budget, callback=None):
        env = VetoWrapper(env, self.shield, self.note_veto)
        ...

    def act(self, obs, deterministic=True):
        action, fired = self.shield(obs, self.policy(obs))
        self.note_veto(fired)
        return action
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

#: ``shield(obs, proposed_action) -> (executed_action, vetoed)``.
Shield = Callable[[Any, np.ndarray], tuple[np.ndarray, bool]]


class VetoWrapper(gym.Wrapper):
    """Replace unsafe actions with ``shield`` and report each decision.

    Args:
        env: the env to protect (the harness's monitored env, possibly wrapped further).
        shield: maps the last observation and the proposed action to the executed action and whether
            the veto fired.
        report: called with the decision before each step (``Agent.note_veto``).

    Attributes:
        vetoes: how many actions this wrapper replaced.
    """

    def __init__(self, env: gym.Env, shield: Shield, report: Callable[[bool], None]) -> None:
        super().__init__(env)
        self.shield, self.report = shield, report
        self.last_obs: Any = None
        self.vetoes = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.last_obs = obs
        return obs, info

    def step(self, action: Any):
        executed, fired = self.shield(self.last_obs, np.asarray(action, dtype=np.float32))
        self.vetoes += int(fired)
        self.report(bool(fired))
        obs, reward, terminated, truncated, info = self.env.step(executed)
        self.last_obs = obs
        return obs, reward, terminated, truncated, {**info, "vetoed": bool(fired)}
