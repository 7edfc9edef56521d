"""Two tiny real agents: uniform random actions, and the same behind a safety veto.

They learn nothing; they exist so that the harness, its tests and users' smoke runs have agents that
need no dataset, no backbone and no GPU. They also serve as the smallest complete example of the
:class:`~safeadapt_bench.agents.Agent` interface.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from safeadapt_bench.agents.base import AdaptCallback, Agent
from safeadapt_bench.agents.budget import Budget


class RandomAgent(Agent):
    """Uniform random actions in the action space, seeded.

    Args:
        scale: actions are drawn from ``U(-scale, scale)`` (then clipped to the space).
    """

    def __init__(self, observation_space: Any, action_space: Any, *, seed: int = 0, scale: float = 1.0,
                 **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, seed=seed, **kwargs)
        self.scale = float(scale)
        self.rng = np.random.default_rng(seed)
        self.shape = tuple(getattr(action_space, "shape", None) or (7,))
        self.low = np.asarray(getattr(action_space, "low", -1.0), dtype=np.float32)
        self.high = np.asarray(getattr(action_space, "high", 1.0), dtype=np.float32)

    def pretrain(self, dataset: Any, budget: Budget) -> dict[str, Any]:
        """Nothing to learn; reports whether a dataset was given."""
        return {"dataset": dataset is not None}

    def adapt(self, env: Any, budget: Budget, callback: AdaptCallback | None = None) -> dict[str, Any]:
        """Act randomly until the budget is spent or the callback says stop."""
        meter = budget.start()
        steps, episodes = 0, 0
        obs, _ = env.reset()
        while not meter.exhausted(env_steps=steps):
            obs, _, terminated, truncated, _ = env.step(self.act(obs, deterministic=False))
            steps += 1
            if terminated or truncated:
                episodes += 1
                obs, _ = env.reset()
            if callback is not None and callback(None) is False:
                break
        return {"env_steps": steps, "episodes": episodes}

    def propose(self, obs: Any) -> np.ndarray:
        """A random action."""
        draw = self.rng.uniform(-self.scale, self.scale, self.shape)
        return np.clip(draw, self.low, self.high).astype(np.float32)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """A random action (``deterministic`` is ignored: the draw is seeded)."""
        return self.propose(obs)

    def save(self, path: str) -> None:
        """Write the options and RNG state as JSON."""
        with open(path, "w") as f:
            json.dump({"class": type(self).__name__, "seed": self.seed, "scale": self.scale,
                       "shape": list(self.shape), "low": self.low.tolist(), "high": self.high.tolist(),
                       "rng": self.rng.bit_generator.state}, f)

    @classmethod
    def load(cls, path: str) -> RandomAgent:
        """Rebuild from :meth:`save`'s JSON (the spaces are rebuilt as Boxes)."""
        import gymnasium as gym

        with open(path) as f:
            d = json.load(f)
        space = gym.spaces.Box(np.asarray(d["low"], np.float32), np.asarray(d["high"], np.float32),
                               tuple(d["shape"]), np.float32)
        agent = cls(None, space, seed=d["seed"], scale=d["scale"])
        agent.rng.bit_generator.state = d["rng"]
        return agent

    def trainable_parameters(self) -> tuple[int, int]:
        """No parameters."""
        return 0, 0


class ShieldedRandomAgent(RandomAgent):
    """Random actions behind a veto that replaces any strong downward push (a force-cost risk).

    Args:
        max_down: the veto fires when the proposed z-translation ``action[2]`` is below ``-max_down``;
            the executed action then has ``action[2] = 0``.
    """

    uses_veto = True

    def __init__(self, observation_space: Any, action_space: Any, *, seed: int = 0, scale: float = 1.0,
                 max_down: float = 0.5, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, seed=seed, scale=scale, **kwargs)
        self.max_down = float(max_down)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """A random action, with the veto applied and reported."""
        action = self.propose(obs)
        fired = bool(action.shape[0] > 2 and action[2] < -self.max_down)
        if fired:
            action[2] = 0.0
        self.note_veto(fired)
        return action
