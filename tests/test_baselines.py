"""The four reference agents (issue 5): tiny-budget life cycle, backbone freezing, veto, Lagrangian."""

from __future__ import annotations

import tempfile

import gymnasium as gym
import numpy as np
import pytest
import torch

import safeadapt_bench.envs  # noqa: F401 - registers the ids
from safeadapt_bench.agents import Budget
from safeadapt_bench.agents.registry import REFERENCE_AGENTS, check_obs_keys, resolve_agent
from safeadapt_bench.baselines.common import info_nce
from safeadapt_bench.baselines.common.pretrain import discounted_rate

ENV = "SafeAdapt/Lift-v0"
STEPS = 8
#: Everything tiny: a few updates on 4-pair batches, SAC updates from the 2nd env step.
TINY = dict(pretrain_updates=2, pretrain_batch_size=4, window=2, learning_starts=2, train_freq=2, batch_size=4,
            buffer_size=64, veto_candidates=4, net_arch=(16,))


@pytest.fixture(scope="module", autouse=True)
def _torch_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """One short careless episode (16 px RGB-D + state) in a temporary data directory."""
    from safeadapt_bench.data import collect, load

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        summary = collect(ENV, 1, "careless", seed=0, progress=False, obs_mode="rgbd+state", camera_size=16,
                          max_episode_steps=STEPS)
        yield load(summary.dataset_id)


@pytest.fixture(scope="module")
def env():
    e = gym.make(ENV, obs_mode="rgbd", camera_size=16, max_episode_steps=STEPS)
    yield e
    e.close()


def _frozen_weights(agent) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in agent.backbone().named_parameters() if not p.requires_grad}


@pytest.mark.parametrize("name", REFERENCE_AGENTS)
def test_agent_pretrains_adapts_acts_and_round_trips(name, env, logs, tmp_path, monkeypatch):
    cls = resolve_agent(name)
    agent = cls(env.observation_space, env.action_space, seed=0, **TINY)
    trainable, total = agent.trainable_parameters()
    assert 0 < trainable <= total
    vision0 = {n: p.detach().clone() for n, p in agent.backbone().clip.visual.named_parameters()}
    frozen0 = _frozen_weights(agent)

    pre = agent.pretrain(logs, Budget(updates=2))
    assert pre["updates"] == 2
    expected = {"safe-adapter": {"infonce", "bc_nll", "cost_bce"}, "adapter": {"infonce", "bc_nll"},
                "full-finetune": {"infonce", "bc_nll"}, "safe-rl": {"bc_nll", "cost_bce"}}[name]
    assert expected <= set(pre) and all(np.isfinite(pre[k]) for k in expected)
    assert not ({"infonce", "bc_nll", "cost_bce"} - expected) & set(pre)

    obs, _ = env.reset(seed=0)
    action = agent.act(obs)
    assert action.shape == (7,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)

    calls = []
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where SB3's default logger would make a folder
    stats = agent.adapt(env, Budget(env_steps=6), lambda s: calls.append(s) or True)
    assert stats["env_steps"] == 6 and len(calls) == 6 and stats["updates"] >= 1
    if agent.uses_veto:  # the veto saw every executed action and reported it
        assert agent.model.veto_decisions >= 6 and "veto_rate" in stats
    if name == "safe-rl":
        assert stats["lagrange_multiplier"] > 0 and "cost_critic_loss" in stats

    # the adapter agents leave the backbone bit-identical; full fine-tuning moves it
    vision1 = dict(agent.backbone().clip.visual.named_parameters())
    if name == "full-finetune":
        assert frozen0 == {} and any(not torch.equal(vision0[n], p) for n, p in vision1.items())
    else:
        assert len(frozen0) > 0
        assert all(torch.equal(frozen0[n], p) for n, p in agent.backbone().named_parameters() if n in frozen0)
        assert set(frozen0) == {n for n, p in agent.backbone().named_parameters() if not p.requires_grad}

    agent.save(str(tmp_path / "agent"))
    again = cls.load(str(tmp_path / "agent"))
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(again.act(obs), agent.act(obs))
    assert again.trainable_parameters() == agent.trainable_parameters()
    again.adapt(env, Budget(env_steps=2))
    assert list(scratch.iterdir()) == []  # no empty SB3-<date> folder per learn()
    assert again.config == agent.config and again.uses_veto == agent.uses_veto


class _ConstructedCostCritic(torch.nn.Module):
    """Cost rate ~1 when the first action component is above 0.5, ~0 otherwise."""

    def logits(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return 50.0 * (actions[:, :1] - 0.5)

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(features, actions))


def test_veto_rejects_a_known_unsafe_candidate(env):
    kwargs = {**TINY, "veto_candidates": 16}
    agent = resolve_agent("safe-adapter")(env.observation_space, env.action_space, seed=0, **kwargs)
    model = agent.model
    model.cost_critic = _ConstructedCostCritic()
    obs = agent._tok.observation(env.reset(seed=0)[0])
    unsafe = np.array([0.9, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    safe = np.array([-0.2, 0.1, 0, 0, 0, 0, 0], dtype=np.float32)
    assert model.cost_rate(obs, np.stack([unsafe, safe])).round(3).tolist() == [1.0, 0.0]

    executed, fired = model.shield(obs, safe)
    assert not fired and np.array_equal(executed, safe) and agent.pop_veto() is False

    executed, fired = model.shield(obs, unsafe)
    assert fired and agent.pop_veto() is True
    assert executed[0] <= 0.5 and model.cost_rate(obs, executed[None])[0] <= model.veto_threshold

    # no candidate passes: the lowest-cost one is executed
    model.veto_threshold = -1.0
    executed, fired = model.shield(obs, unsafe)
    assert fired
    rates = model.cost_rate(obs, np.stack([unsafe, executed]))
    assert rates[1] <= rates[0]


class _OnlyReverseIsSafe(torch.nn.Module):
    """Cost rate ~1 unless the first action component is below -0.5: an exit the actor does not propose."""

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(50.0 * (actions[:, :1] + 0.5))


def test_uniform_candidates_give_the_veto_an_exit_the_actor_does_not_propose(env):
    obs_raw = env.reset(seed=0)[0]
    proposal = np.array([0.9, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    executed = {}
    for uniform in (0, 64):
        kwargs = {**TINY, "veto_candidates": 0, "veto_uniform_candidates": uniform}
        agent = resolve_agent("safe-adapter")(env.observation_space, env.action_space, seed=0, **kwargs)
        agent.model.cost_critic = _OnlyReverseIsSafe()
        obs = agent._tok.observation(obs_raw)
        executed[uniform], fired = agent.model.shield(obs, proposal, deterministic=True)
        assert fired
    np.testing.assert_array_equal(executed[0], proposal)  # no candidate passes: the lowest-cost one, itself
    assert executed[64][0] < -0.5  # a passing action from the whole box, the nearest of those that pass
    with pytest.raises(ValueError, match="veto_uniform_candidates must be >= 0"):
        resolve_agent("safe-adapter")(env.observation_space, env.action_space, seed=0,
                                      **{**TINY, "veto_uniform_candidates": -1})


def test_veto_predict_shares_one_backbone_pass_and_matches_sac(env):
    from stable_baselines3 import SAC

    agent = resolve_agent("safe-adapter")(env.observation_space, env.action_space, seed=0, **TINY)
    model = agent.model
    model.cost_critic = _ConstructedCostCritic()
    obs = agent._tok.observation(env.reset(seed=0)[0])
    proposal, _ = SAC.predict(model, obs, deterministic=True)  # SB3's own predict, no veto
    calls = []
    hook = model.actor.features_extractor.register_forward_hook(lambda *a: calls.append(1))
    action, _ = model.predict(obs, deterministic=True)
    hook.remove()
    assert len(calls) == 1 and action.shape == env.action_space.shape
    if proposal[0] <= 0.5:  # safe for the constructed critic: executed as proposed
        np.testing.assert_allclose(action, proposal, atol=1e-6)
        assert agent.pop_veto() is False
    else:
        assert agent.pop_veto() is True and action[0] <= 0.5


def test_lagrange_multiplier_rises_above_the_limit_and_falls_below(env):
    agent = resolve_agent("safe-rl")(env.observation_space, env.action_space, seed=0, cost_limit=0.1, **TINY)
    model = agent.model
    lam0 = model.lagrange_multiplier
    ups = [model.update_lagrange(0.5) for _ in range(5)]
    assert ups[0] > lam0 and all(b > a for a, b in zip(ups, ups[1:]))
    downs = [model.update_lagrange(0.0) for _ in range(5)]
    assert downs[0] < ups[-1] and all(b < a for a, b in zip(downs, downs[1:])) and downs[-1] > 0


def test_missing_observation_entries_and_fixed_fields_raise_clearly():
    state_env = gym.make(ENV, obs_mode="state")
    for name in REFERENCE_AGENTS:
        cls = resolve_agent(name)
        with pytest.raises(ValueError, match="rgb"):
            check_obs_keys(cls, state_env.observation_space, "Lift state")
        with pytest.raises(ValueError, match="missing"):
            cls(state_env.observation_space, state_env.action_space)
    state_env.close()
    with pytest.raises(ValueError, match="fixes"):
        resolve_agent("safe-adapter")(None, None, veto=False)
    with pytest.raises(ValueError, match="fixes"):
        resolve_agent("full-finetune")(None, None, train_backbone=False)


def test_agents_differ_only_by_their_defining_fields():
    configs = {n: resolve_agent(n)(None, None).config for n in REFERENCE_AGENTS}
    assert configs["safe-adapter"].veto and configs["safe-adapter"].cost_critic and configs["safe-adapter"].adapter
    assert not configs["adapter"].cost_critic and configs["adapter"].adapter == configs["safe-adapter"].adapter
    assert configs["full-finetune"].train_backbone and configs["full-finetune"].adapter is None
    assert configs["safe-rl"].lagrangian and configs["safe-rl"].adapter is None and not configs["safe-rl"].veto
    assert [n for n in REFERENCE_AGENTS if resolve_agent(n).uses_veto] == ["safe-adapter"]
    no_adapter = resolve_agent("adapter")(None, None, adapter="none").config  # how a TOML suite writes None
    assert no_adapter.adapter is None and not no_adapter.contrastive


def test_info_nce_prefers_aligned_pairs_and_cost_targets_are_rates():
    torch.manual_seed(0)
    a = torch.randn(8, 16)
    aligned = info_nce(a, a + 0.01 * torch.randn(8, 16), 0.1)
    shuffled = info_nce(a, a[torch.randperm(8)], 0.1)
    assert aligned < 0.01 < shuffled
    rate = discounted_rate(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), 0.5)
    assert rate.shape == (3, 1) and rate[0, 0] == 1 and rate[1, 0] == 0 and 0 < rate[2, 0] < 1


def test_safe_adapter_runs_as_a_harness_cell_with_its_veto_recorded(tmp_path, monkeypatch):
    from safeadapt_bench.harness.records import load_records
    from safeadapt_bench.harness.suites import Settings, Suite, TaskSpec
    from safeadapt_bench.harness.sweep import run_sweep

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    task = TaskSpec("Lift", obs_mode="rgbd", camera_size=16, env_kwargs={"max_episode_steps": STEPS})
    settings = Settings(dataset_policy="careless", dataset_episodes=1, adapt_env_steps=6, eval_every=6,
                        eval_episodes=1, final_eval_episodes=1, probe="none")
    suite = Suite("tiny", agents=("safe-adapter",), tasks=(task,), seeds=(0,), settings=settings,
                  agent_kwargs={"safe-adapter": TINY})
    result = run_sweep(suite, str(tmp_path / "res"), progress=False)
    assert result.failed == {} and len(result.completed) == 1
    (rec,) = load_records(str(tmp_path / "res"))
    assert rec["metrics"]["adapt_env_steps"] == 6
    assert rec["agent_stats"]["pretrain"]["updates"] == 2 and "cost_bce" in rec["agent_stats"]["pretrain"]
    assert 0 <= rec["metrics"]["veto_rate_learning"] <= 1


def test_bc_anchor_keeps_the_actor_near_the_logs_while_adapting(env, logs):
    """``bc_weight``: every SAC actor update also clones the logs, so the cloned policy drifts less."""
    from safeadapt_bench.baselines.common.pretrain import validation_bc

    drift = {}
    for w in (0.0, 50.0):
        agent = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, adapter=None,
                                         **{**TINY, "learning_rate": 3e-3, "bc_weight": w})
        agent.pretrain(logs, Budget(updates=30))
        assert (agent.model.bc_anchor is not None) == (w > 0)
        frames = agent.logged_frames(logs)
        before = validation_bc(agent.model, frames)
        stats = agent.adapt(env, Budget(env_steps=24))
        assert ("bc_anchor" in stats) == (w > 0)
        drift[w] = validation_bc(agent.model, frames) - before
    assert drift[50.0] < drift[0.0]
    with pytest.raises(ValueError, match="bc_weight must be >= 0"):
        agent.model.set_bc_anchor(frames, torch.arange(3), -1.0)


def test_actor_learning_rate_slows_only_the_actor(env, logs):
    """``actor_learning_rate``: the actor's Adam steps at its own rate while the critic keeps SAC's."""
    agent = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, adapter=None,
                                     **{**TINY, "learning_rate": 3e-3, "actor_learning_rate": 0.0})
    agent.pretrain(logs, Budget(updates=5))
    actor = [p.detach().clone() for p in agent.model.actor.mu.parameters()]
    critic = [p.detach().clone() for p in agent.model.critic.q_networks[0].parameters()]
    agent.adapt(env, Budget(env_steps=24))
    assert agent.model.actor.optimizer.param_groups[0]["lr"] == 0.0
    assert agent.model.critic.optimizer.param_groups[0]["lr"] == 3e-3
    assert all(torch.equal(a, b) for a, b in zip(actor, agent.model.actor.mu.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(critic, agent.model.critic.q_networks[0].parameters()))
    with pytest.raises(ValueError, match="actor_lr must be >= 0"):
        resolve_agent("adapter")(env.observation_space, env.action_space, adapter=None,
                                 **{**TINY, "actor_learning_rate": -1e-4})


def test_the_actor_loss_moves_adapters_only_through_the_actions(env, logs):
    """As SB3 does for a shared extractor: the critic's input is detached in the actor loss, so an actor
    whose actions ignore the features gives the adapters no gradient (else they would move the features
    to wherever Q is high)."""
    agent = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0,
                                     **{**TINY, "learning_starts": 10**6})
    agent.adapt(env, Budget(env_steps=8))  # fills the replay buffer, no update
    with torch.no_grad():
        for layer in (agent.model.actor.mu, agent.model.actor.log_std):
            layer.weight.zero_()
    adapters = {n: p for n, p in agent.backbone().named_parameters() if p.requires_grad}
    assert adapters
    grads = {}
    step = agent.model.actor.optimizer.step

    def record(*args, **kwargs):
        grads.update({n: None if p.grad is None else p.grad.abs().max().item() for n, p in adapters.items()})
        return step(*args, **kwargs)

    agent.model.actor.optimizer.step = record
    agent.model.train(gradient_steps=1, batch_size=4)
    assert grads and all(not g for g in grads.values()), grads
