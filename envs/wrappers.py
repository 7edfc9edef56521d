"""Wrappers for interoperability with Safety-Gymnasium and Box-only libraries (stable-baselines3)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Gymnasium2SafetyGymnasium(gym.Wrapper):
    """Return Safety-Gymnasium's 6-tuple ``(obs, reward, cost, terminated, truncated, info)``.

    The cost is read from ``info["cost"]``, which stays in ``info`` as well.

    Example:
        >>> env = Gymnasium2SafetyGymnasium(gymnasium.make("SafeAdapt/Lift-v0"))
        >>> obs, reward, cost, terminated, truncated, info = env.step(env.action_space.sample())
    """

    def step(self, action):  # type: ignore[override]
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, float(info["cost"]), terminated, truncated, info


class SafetyGymnasium2Gymnasium(gym.Wrapper):
    """The inverse: wrap a 6-tuple env and return Gymnasium's 5-tuple with the cost in ``info["cost"]``.

    Mirrors ``safety_gymnasium.wrappers.SafetyGymnasium2Gymnasium``.
    """

    def step(self, action):  # type: ignore[override]
        obs, reward, cost, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "cost": cost}


class InstructionTokens(gym.ObservationWrapper):
    """Replace ``obs["instruction"]`` (text) by CLIP BPE token ids, a fixed-length int64 ``Box``.

    With this wrapper every observation entry is a ``Box``, so stable-baselines3's
    ``MultiInputPolicy`` trains on the full observation. The ids are open_clip's standard tokens
    (start, text, end, zero padding), so they feed an open_clip text tower directly.

    Args:
        env: an env whose observation is a Dict with an ``instruction`` Text entry.
        context_length: number of token ids (text longer than this is truncated, keeping the end token).
    """

    def __init__(self, env: gym.Env, context_length: int = 32):
        super().__init__(env)
        if not isinstance(env.observation_space, spaces.Dict) or "instruction" not in env.observation_space.spaces:
            raise ValueError("InstructionTokens needs a Dict observation with an 'instruction' entry; "
                             f"got {env.observation_space}.")
        if context_length < 3:
            raise ValueError(f"context_length must be at least 3 (start, one token, end), got {context_length}.")
        from open_clip.tokenizer import SimpleTokenizer

        self._tokenizer = SimpleTokenizer(context_length=context_length)
        self.context_length = context_length
        vocab = len(self._tokenizer.encoder)
        self.observation_space = spaces.Dict({
            **env.observation_space.spaces,
            "instruction": spaces.Box(0, vocab - 1, (context_length,), np.int64),
        })
        self._cache: dict[str, np.ndarray] = {}

    def tokens(self, text: str) -> np.ndarray:
        """Token ids of ``text`` (cached: instructions repeat)."""
        ids = self._cache.get(text)
        if ids is None:
            ids = self._tokenizer([text])[0].numpy().astype(np.int64)
            self._cache[text] = ids
        return ids.copy()

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {**observation, "instruction": self.tokens(observation["instruction"])}
