"""The Agent interface and agent discovery: names, module paths, files, entry points, bad inputs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from safeadapt_bench.agents import (
    Agent,
    AgentResolutionError,
    Budget,
    StepRecord,
    StepStats,
    known_agents,
    make_agent,
    resolve_agent,
)
from safeadapt_bench.agents.simple import RandomAgent, ShieldedRandomAgent

OBS = gym.spaces.Dict(
    {"proprio": gym.spaces.Box(-1, 1, (30,), np.float32), "state": gym.spaces.Box(-1, 1, (10,), np.float32)}
)
ACT = gym.spaces.Box(-1, 1, (7,), np.float32)

USER_AGENT = """
import numpy as np
from safeadapt_bench.agents import Agent

class MyAgent(Agent):
    required_obs_keys = ("proprio",)

    def pretrain(self, dataset, budget):
        return None

    def adapt(self, env, budget, callback=None):
        return None

    def act(self, obs, deterministic=True):
        return np.zeros(7, np.float32)

    def save(self, path):
        open(path, "w").write("x")

    @classmethod
    def load(cls, path):
        return cls(None, None)

    def trainable_parameters(self):
        return 3, 10

class NoAct(Agent):
    def pretrain(self, dataset, budget): pass
    def adapt(self, env, budget, callback=None): pass
    def save(self, path): pass
    @classmethod
    def load(cls, path): pass
    def trainable_parameters(self): return 0, 0

class Duck:
    def pretrain(self, dataset, budget): pass
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "sab_user_agent.py").write_text(USER_AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_user_agent_by_module_path(user_module):
    agent = make_agent("sab_user_agent:MyAgent", OBS, ACT, seed=3)
    assert isinstance(agent, Agent) and agent.seed == 3
    assert agent.trainable_parameters() == (3, 10)
    assert agent.act({}).shape == (7,)


def test_user_agent_by_file_path(user_module):
    cls = resolve_agent(f"{user_module / 'sab_user_agent.py'}:MyAgent")
    assert cls.__name__ == "MyAgent" and cls.required_obs_keys == ("proprio",)


def test_user_agent_by_entry_point(tmp_path, monkeypatch):
    (tmp_path / "sab_ep_agent.py").write_text(USER_AGENT)
    dist = tmp_path / "sab_ep_agent-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sab-ep-agent\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[safeadapt_bench.agents]\nmy-ep-agent = sab_ep_agent:MyAgent\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert known_agents()["my-ep-agent"] == "sab_ep_agent:MyAgent"
    assert resolve_agent("my-ep-agent").__name__ == "MyAgent"


def test_unknown_name_lists_known_agents():
    with pytest.raises(AgentResolutionError, match="Unknown agent 'nope'.*safe-adapter.*safe-rl"):
        resolve_agent("nope")


def test_reference_agents_resolve_lazily_with_clear_error():
    names = known_agents()
    for name in ("safe-adapter", "full-finetune", "adapter", "safe-rl"):
        assert names[name].startswith("safeadapt_bench.baselines.")
    # A missing module is reported with its path (the baselines may not be written yet).
    with pytest.raises(AgentResolutionError, match="cannot import 'sab_missing_mod': No module named"):
        resolve_agent("sab_missing_mod:Agent")
    with pytest.raises(AgentResolutionError, match="has no attribute 'Nope'"):
        resolve_agent("safeadapt_bench.agents.simple:Nope")


def test_missing_method_is_named(user_module):
    with pytest.raises(AgentResolutionError, match=r"lacks required method\(s\) \['act'\]"):
        resolve_agent("sab_user_agent:NoAct")
    with pytest.raises(AgentResolutionError, match="lacks required method.*'adapt', 'act', 'save'"):
        resolve_agent("sab_user_agent:Duck")


def test_missing_obs_keys_are_named(user_module):
    state_only = gym.spaces.Dict({"state": gym.spaces.Box(-1, 1, (3,))})
    with pytest.raises(ValueError, match=r"needs observation key\(s\) \['proprio'\].*provides \['state'\]"):
        make_agent("sab_user_agent:MyAgent", state_only, ACT)


def test_random_agent_save_load_roundtrip(tmp_path):
    agent = RandomAgent(OBS, ACT, seed=5)
    agent.act({})
    agent.save(str(tmp_path / "a.json"))
    expected = agent.act({})
    again = RandomAgent.load(str(tmp_path / "a.json"))
    np.testing.assert_array_equal(again.act({}), expected)
    assert again.trainable_parameters() == (0, 0)


def test_veto_bookkeeping():
    agent = ShieldedRandomAgent(OBS, ACT, seed=0, max_down=0.0)
    fired = []
    for _ in range(50):
        action = agent.act({})
        assert action[2] >= 0.0
        fired.append(agent.pop_veto())
    assert set(fired) == {True, False}
    assert RandomAgent(OBS, ACT).pop_veto() is None
    stats = StepStats()
    for f in fired:
        stats.add(StepRecord(cost=0.0, safe=True, vetoed=f))
    stats.add(StepRecord(cost=1.0, safe=False, vetoed=None))
    assert stats.veto_rate == pytest.approx(sum(fired) / 50)
    assert stats.safe_ratio == pytest.approx(50 / 51)


def test_budget_meter():
    meter = Budget(env_steps=10).start()
    assert not meter.exhausted(env_steps=9) and meter.exhausted(env_steps=10)
    assert Budget(wall_seconds=0.0).start().exhausted()
    assert Budget().unlimited
    with pytest.raises(ValueError, match="env_steps must be >= 0"):
        Budget(env_steps=-1)


def test_agents_command_lists_names_and_status(capsys):
    from safeadapt_bench.cli import main

    assert main(["agents"]) == 0
    out = capsys.readouterr().out
    assert "random -> safeadapt_bench.agents.simple:RandomAgent: ok" in out
    assert "safe-rl -> safeadapt_bench.baselines.safe_rl:SafeRLAgent" in out
    assert main(["agents", "--check", "shielded-random"]) == 0
    assert "uses_veto=True" in capsys.readouterr().out
    assert main(["agents", "--check", "nope"]) == 2
    assert "Unknown agent 'nope'" in capsys.readouterr().err


def test_veto_wrapper_reports_every_decision_to_the_harness():
    from safeadapt_bench.agents.veto import VetoWrapper
    from safeadapt_bench.harness.monitor import SafetyMonitor
    from safeadapt_bench.harness.toy import make_env

    agent = RandomAgent(OBS, ACT, seed=0)
    agent.uses_veto = True  # an instance of a veto agent, for the test

    def shield(obs, action):
        fired = bool(action[2] < -0.7)  # the toy env's force cost
        if fired:
            action = action.copy()
            action[2] = 0.0
        return action, fired

    monitor = SafetyMonitor(
        make_env("SafeAdapt/Lift-v0", obs_mode="state"), veto_source=agent.pop_veto, seed=0
    )
    env = VetoWrapper(monitor, shield, agent.note_veto)
    env.reset()
    infos = []
    for _ in range(60):
        infos.append(env.step(agent.act(None))[-1])
    assert monitor.stats.veto_checked == 60 and monitor.stats.veto_fired == env.vetoes > 0
    assert sum(i["vetoed"] for i in infos) == env.vetoes
    assert not any(i["cost_force"] for i in infos)  # every force-cost action was replaced
