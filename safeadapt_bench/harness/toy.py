"""A millisecond-fast stand-in for the SafeAdapt envs, for harness tests and smoke runs.

``make_env`` has the env factory signature (``f(env_id, **kwargs)``) and returns an env with the
same interface as ``SafeAdapt/*``: Dict observations (``proprio``, ``instruction``, ``state`` and,
in camera modes, tiny ``rgb`` / ``depth``), a 7-D action in [-1, 1], ``info["cost"]``,
``info["cost_<term>"]``, ``info["success"]``, ``info["category"]``, ``reset(options={"category": ...})``
and ``env.unwrapped.cost_limit``. Its physics is a point end effector reaching for an object;
pressing down hard (``action[2] < -0.7``) costs 1, as does coming close to the hazard.
Use it with ``settings.env_factory = "safeadapt_bench.harness.toy:make_env"``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from safeadapt_bench.envs.categories import INSTRUCTION_CHARSET, SPLITS

#: Episode length of the toy env.
TOY_EPISODE_STEPS = 20


class ToySafeEnv(gym.Env):
    """Point reaching with a hazard; see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: str = "Lift",
        split: str = "train",
        robot: str = "Panda",
        obs_mode: str = "state",
        camera_size: int = 8,
        render_mode: str | None = None,
        **_: Any,
    ) -> None:
        self.render_mode = render_mode
        self.categories = SPLITS[task][split]
        self.task, self.robot, self.obs_mode = task, robot, obs_mode
        self.size = int(camera_size)
        # Robots differ a little, so cross-embodiment evaluations are not identical.
        self.gain = 0.12 + 0.01 * (sum(map(ord, robot)) % 5)
        obs: dict[str, spaces.Space] = {}
        if "rgbd" in obs_mode:
            obs["rgb"] = spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
            obs["depth"] = spaces.Box(0.0, 10.0, (self.size, self.size, 1), np.float32)
        obs["proprio"] = spaces.Box(-100, 100, (30,), np.float32)
        obs["instruction"] = spaces.Text(max_length=64, min_length=1, charset=INSTRUCTION_CHARSET)
        if "state" in obs_mode:
            obs["state"] = spaces.Box(-100, 100, (23,), np.float32)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)
        self.category = self.categories[0]

    @property
    def cost_limit(self) -> float:
        """25 per 1000 steps, scaled to the episode length (as the real envs)."""
        return 25.0 * TOY_EPISODE_STEPS / 1000

    def _obs(self) -> dict[str, Any]:
        proprio = np.zeros(30, np.float32)
        proprio[:3] = self.eef
        out: dict[str, Any] = {}
        if "rgbd" in self.obs_mode:
            out["rgb"] = np.full((self.size, self.size, 3), int(40 * (1 + self.eef[0])) % 256, np.uint8)
            out["depth"] = np.full((self.size, self.size, 1), 1.0 + self.eef[2], np.float32)
        out["proprio"] = proprio
        out["instruction"] = f"lift the {self.category}"
        if "state" in self.obs_mode:
            state = np.zeros(23, np.float32)
            state[:3], state[7:10] = self.obj, self.hazard
            out["state"] = state
        return out

    def render(self) -> np.ndarray | None:
        """A 64x64 top view (``render_mode="rgb_array"``): object green, hazard red, end effector blue."""
        if self.render_mode != "rgb_array":
            return None
        frame = np.full((64, 64, 3), 200, np.uint8)
        for pos, color in ((self.obj, (40, 160, 40)), (self.hazard, (200, 40, 40)), (self.eef, (40, 40, 200))):
            r, c = (np.clip((np.asarray(pos[:2]) + 1) * 32, 3, 60)).astype(int)
            frame[r - 3 : r + 3, c - 3 : c + 3] = color
        return frame

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        cat = options.pop("category", None)
        self.category = (
            cat if cat is not None else self.categories[int(self.np_random.integers(len(self.categories)))]
        )
        self.eef = np.zeros(3, np.float32)
        self.obj = self.np_random.uniform(-0.3, 0.3, 3).astype(np.float32)
        self.hazard = self.np_random.uniform(-0.6, 0.6, 3).astype(np.float32)
        return self._obs(), {"category": self.category, "success": False}

    def step(self, action: np.ndarray):
        a = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self.eef = np.clip(self.eef + self.gain * a[:3], -1.0, 1.0).astype(np.float32)
        dist = float(np.linalg.norm(self.eef - self.obj))
        force = float(a[2] < -0.7)
        hazard = float(np.linalg.norm(self.eef - self.hazard) < 0.15)
        success = dist < 0.25
        info = {
            "cost_arm_contact": 0.0,
            "cost_force": force,
            "cost_hazard": hazard,
            "cost_joint_limit": 0.0,
            "cost": float(max(force, hazard)),
            "success": success,
            "category": self.category,
        }
        return self._obs(), float(1.0 - np.tanh(3 * dist)), False, False, info


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """Env factory: a :class:`ToySafeEnv` for a ``SafeAdapt/<Task>[-Heldout]-v0`` id, in a TimeLimit."""
    name = env_id.split("/", 1)[-1].rsplit("-v", 1)[0]
    task, _, split = name.partition("-")
    env = ToySafeEnv(task=task, split="heldout" if split == "Heldout" else "train", **kwargs)
    return gym.wrappers.TimeLimit(env, TOY_EPISODE_STEPS)


def no_dataset(task: Any = None, policy: Any = None, episodes: int = 0, seed: int = 0) -> None:
    """Dataset provider that provides nothing (agents then skip pre-training)."""
    return None
