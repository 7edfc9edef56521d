"""Interop: Safety-Gymnasium's 6-tuple, vector envs, instruction tokens for stable-baselines3."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from safeadapt_bench.envs.wrappers import (
    Gymnasium2SafetyGymnasium,
    InstructionTokens,
    SafetyGymnasium2Gymnasium,
)


def test_six_tuple_round_trip():
    six = Gymnasium2SafetyGymnasium(gym.make("SafeAdapt/Lift-v0", obs_mode="state"))
    six.reset(seed=0)
    down = np.zeros(7, np.float32)
    down[2], down[6] = -1, 1
    costs = []
    for _ in range(30):
        obs, reward, cost, terminated, truncated, info = six.step(down)
        assert cost == info["cost"]
        costs.append(cost)
    assert max(costs) == 1.0  # pressing into the table costs

    five = SafetyGymnasium2Gymnasium(six)
    five.reset(seed=0)
    out = five.step(down)
    assert len(out) == 5 and "cost" in out[4]


def test_async_vector_env_returns_costs_per_env():
    venv = gym.make_vec("SafeAdapt/Lift-v0", num_envs=2, vectorization_mode="async", obs_mode="state")
    try:
        venv.reset(seed=[0, 1])
        actions = np.zeros((2, 7), np.float32)
        actions[0, 2], actions[0, 6] = -1, 1  # env 0 presses into the table, env 1 hovers
        for _ in range(30):
            _, _, _, _, info = venv.step(actions)
            assert isinstance(info["cost"], np.ndarray) and info["cost"].shape == (2,)
            if info["cost"][0] == 1.0:
                break
        assert info["cost"].tolist() == [1.0, 0.0]
        assert info["category"].shape == (2,)
    finally:
        venv.close()


def test_instruction_tokens_make_every_entry_a_box():
    env = InstructionTokens(gym.make("SafeAdapt/Lift-v0", obs_mode="state"), context_length=16)
    assert all(isinstance(s, spaces.Box) for s in env.observation_space.spaces.values())
    obs, _ = env.reset(seed=0)
    ids = obs["instruction"]
    assert ids.shape == (16,) and ids.dtype == np.int64 and obs in env.observation_space
    assert ids[0] == 49406 and 49407 in ids  # CLIP start and end tokens
    other, _ = env.reset(seed=0, options={"category": "milk" if env.unwrapped.category != "milk" else "can"})
    assert not np.array_equal(other["instruction"], ids)


def test_instruction_tokens_rejects_non_dict_env():
    with pytest.raises(ValueError, match="instruction"):
        InstructionTokens(gym.make("CartPole-v1"))


def test_stable_baselines3_trains_on_the_full_observation():
    from stable_baselines3 import SAC

    env = InstructionTokens(gym.make("SafeAdapt/Lift-v0", camera_size=40), context_length=8)
    model = SAC("MultiInputPolicy", env, buffer_size=64, learning_starts=16, batch_size=8,
                policy_kwargs={"net_arch": [16]}, seed=0, verbose=0)
    model.learn(total_timesteps=24)
    action, _ = model.predict(env.reset(seed=1)[0], deterministic=True)
    assert action.shape == (7,)
    env.close()


FORK_AFTER_RENDER = """
import gymnasium as gym, numpy as np, safeadapt_bench
env = gym.make("SafeAdapt/Lift-v0", camera_size=16)
env.reset(seed=0)  # a GL context now exists in the parent
venv = gym.make_vec("SafeAdapt/Lift-v0", num_envs=2, vectorization_mode="async", camera_size=16)
venv.reset(seed=0)
obs, *_ = venv.step(np.zeros((2, 7), np.float32))
assert obs["rgb"].shape == (2, 16, 16, 3)
venv.close()
print("ok")
"""


def test_async_vector_env_forks_safely_after_rendering():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FORK_AFTER_RENDER], capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
