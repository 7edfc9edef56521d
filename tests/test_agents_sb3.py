"""A user's one-file agent (stable-baselines3 PPO) runs through the harness by ``module:Class``."""

from __future__ import annotations

import json

from harness_fixtures import toy_suite

from safeadapt_bench.harness.records import load_records
from safeadapt_bench.harness.suites import TaskSpec
from safeadapt_bench.harness.sweep import run_sweep

USER_PPO_AGENT = '''
"""my_ppo_agent.py: a complete agent in one file."""
import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from safeadapt_bench.agents import Agent, Budget
from safeadapt_bench.agents.sb3 import HarnessCallback, SpacesEnv

KEYS = ("proprio", "state")


def numeric(env):
    return gym.wrappers.FilterObservation(env, list(KEYS))


class PPOAgent(Agent):
    required_obs_keys = KEYS

    def __init__(self, observation_space, action_space, *, seed=0, n_steps=32, **kwargs):
        super().__init__(observation_space, action_space, seed=seed, **kwargs)
        if observation_space is not None:  # None when load() rebuilds the agent
            stub = SpacesEnv(observation_space, action_space)
            self.model = PPO("MultiInputPolicy", DummyVecEnv([lambda: numeric(stub)]), n_steps=n_steps,
                             batch_size=16, n_epochs=1, policy_kwargs={"net_arch": [16]}, seed=seed,
                             device="cpu")

    def pretrain(self, dataset, budget):
        return {"skipped": dataset is None}

    def adapt(self, env, budget, callback=None):
        self.model.set_env(DummyVecEnv([lambda: numeric(env)]))
        self.model.learn(budget.env_steps, callback=HarnessCallback(callback, budget))
        return {"timesteps": int(self.model.num_timesteps)}

    def act(self, obs, deterministic=True):
        action, _ = self.model.predict({k: obs[k] for k in KEYS}, deterministic=deterministic)
        return np.asarray(action, dtype=np.float32)

    def save(self, path):
        self.model.save(path)

    @classmethod
    def load(cls, path):
        agent = cls(None, None)
        agent.model = PPO.load(path, device="cpu")
        return agent

    def trainable_parameters(self):
        n = sum(p.numel() for p in self.model.policy.parameters())
        return n, n
'''


def test_user_sb3_agent_runs_by_module_path(tmp_path, monkeypatch):
    (tmp_path / "my_ppo_agent.py").write_text(USER_PPO_AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = toy_suite(
        agents=("my_ppo_agent:PPOAgent",),
        seeds=(0,),
        tasks=(TaskSpec("Lift", obs_mode="state"),),
        adapt_env_steps=64,
        eval_every=32,
    )
    res = str(tmp_path / "res")
    result = run_sweep(suite, res, progress=False)
    assert result.failed == {} and len(result.completed) == 1
    (rec,) = load_records(res)
    assert rec["agent"]["class"] == "my_ppo_agent:PPOAgent"
    assert rec["metrics"]["adapt_env_steps"] == 64  # SB3 stopped when the harness callback said so
    assert rec["curves"]["env_steps"] == [0, 32, 64]
    assert rec["agent_stats"]["adapt"]["timesteps"] == 64
    assert rec["metrics"]["trainable_fraction"] == 1.0 and rec["metrics"]["trainable_params"] > 0
    json.dumps(rec)
    # save / load round trip of the one-file agent
    from my_ppo_agent import PPOAgent

    from safeadapt_bench.harness.toy import make_env

    env = make_env("SafeAdapt/Lift-v0", obs_mode="state")
    agent = PPOAgent(env.observation_space, env.action_space, seed=1)
    obs, _ = env.reset(seed=0)
    agent.save(str(tmp_path / "ppo.zip"))
    again = PPOAgent.load(str(tmp_path / "ppo.zip"))
    assert (again.act(obs) == agent.act(obs)).all()


def test_user_agent_runs_from_a_file_path(tmp_path):
    path = tmp_path / "my_ppo_agent_file.py"
    path.write_text(USER_PPO_AGENT)
    suite = toy_suite(
        agents=(f"{path}:PPOAgent",),
        seeds=(0,),
        tasks=(TaskSpec("Lift", obs_mode="state"),),
        adapt_env_steps=32,
        eval_every=32,
        eval_episodes=1,
        final_eval_episodes=1,
    )
    result = run_sweep(suite, str(tmp_path / "res"), progress=False)
    assert result.failed == {} and result.completed == ["Lift-Panda__my_ppo_agent_file.py_PPOAgent__seed0"]
