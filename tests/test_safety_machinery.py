"""Issue 12: mixed logs, the calibrated veto threshold, the cost critic's quality and the new safety metrics."""

from __future__ import annotations

import math
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from harness_fixtures import toy_suite

from safeadapt_bench.baselines.common.critic import (
    balanced_starts,
    bc_starts,
    calibrate_threshold,
    check_false_veto_rate,
    critic_pools,
    roc_auc,
    veto_quality,
    window_labels,
)
from safeadapt_bench.baselines.common.frames import LoggedFrames, concat_frames, tag_source
from safeadapt_bench.data.mixed import mix_counts, parse_log_mix
from safeadapt_bench.envs.costs import COST_TERMS
from safeadapt_bench.harness.metrics import cumulative_curve, episode_safety
from safeadapt_bench.harness.suites import Settings, SuiteError, TaskSpec, load_suite_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- the threshold rule
def test_calibrated_threshold_vetoes_at_most_the_target_share_of_safe_actions():
    scores = np.arange(100) / 100.0
    assert calibrate_threshold(scores, 0.05) == pytest.approx(0.94)  # the 95th smallest of 100
    assert np.mean(scores > 0.94) == 0.05
    rng = np.random.default_rng(0)
    for n in (7, 20, 333):
        s = rng.random(n)
        for rate in (0.01, 0.05, 0.2, 0.5):
            t = calibrate_threshold(s, rate)
            assert np.mean(s > t) <= rate + 1e-12  # never more false vetoes than asked for
            assert np.mean(s >= t) > rate - 1.0 / n  # and the threshold is the tightest such score
            assert t in s


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, -0.1, 1.5, True, "0.05", float("nan")])
def test_false_veto_rate_outside_0_1_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        check_false_veto_rate(bad)
    with pytest.raises(SuiteError, match="false_veto_rate must be strictly between 0 and 1"):
        Settings(false_veto_rate=bad)
    from safeadapt_bench.baselines.common.config import AgentConfig

    with pytest.raises(ValueError, match="false_veto_rate"):
        AgentConfig(false_veto_rate=bad)


# ---------------------------------------------------------------- mixed logs
def test_log_mix_must_sum_to_one_and_name_known_policies():
    assert parse_log_mix({"expert": 0.5, "noisy": 0.3, "careless": 0.2}) == {"expert": 0.5, "noisy": 0.3,
                                                                             "careless": 0.2}
    with pytest.raises(ValueError, match="sum to 1, they sum to 0.9"):
        parse_log_mix({"expert": 0.5, "noisy": 0.2, "careless": 0.2})
    with pytest.raises(ValueError, match=r"unknown policies \['reckless'\]"):
        parse_log_mix({"expert": 0.5, "reckless": 0.5})
    with pytest.raises(ValueError, match="proportion in"):
        parse_log_mix({"expert": 1.2, "careless": -0.2})
    with pytest.raises(SuiteError, match="settings.log_mix proportions must sum to 1"):
        Settings(log_mix={"expert": 0.7, "careless": 0.2})
    with pytest.raises(SuiteError, match="log_mix_agents"):
        Settings(log_mix={"expert": 1.0}, log_mix_agents="some")


def test_mix_counts_split_the_episodes_by_largest_remainder():
    mix = {"expert": 0.5, "noisy": 0.3, "careless": 0.2}
    assert mix_counts(mix, 10) == {"expert": 5, "noisy": 3, "careless": 2}
    assert mix_counts(mix, 6) == {"expert": 3, "noisy": 2, "careless": 1}
    assert mix_counts(mix, 3) == {"expert": 1, "noisy": 1, "careless": 1}  # nobody named vanishes
    assert mix_counts({"expert": 0.9, "careless": 0.1}, 4) == {"expert": 3, "careless": 1}
    assert mix_counts({"expert": 1.0, "careless": 0.0}, 4) == {"expert": 4}
    for n in range(1, 30):
        assert sum(mix_counts(mix, n).values()) == n


def _frames(costs, episode, sources, names) -> LoggedFrames:
    n = len(costs)
    return LoggedFrames(tokens={}, obs={"proprio": torch.zeros(n, 2)}, actions=torch.zeros(n, 7),
                        labels=torch.zeros(n, 7), costs=torch.tensor(costs, dtype=torch.float32),
                        episode=torch.tensor(episode), step=torch.arange(n),
                        source=torch.tensor(sources), sources=tuple(names))


def test_bc_uses_only_safe_expert_and_noisy_windows_and_the_critic_sees_both_classes():
    # episode 0 expert (a cost at step 3), episode 1 careless (costs at 1-2), episode 2 noisy (safe)
    costs = [0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    episode = [0] * 5 + [1] * 5 + [2] * 4
    f = _frames(costs, episode, [0] * 5 + [1] * 5 + [2] * 4, ["expert", "careless", "noisy"])
    labels = window_labels(f.costs, f.episode, 2)
    # a window of 2 is unsafe when the step or the next one (same episode) costs
    assert labels.tolist() == [0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    starts = f.window_starts(2)
    bc, rule = bc_starts(f, starts, 2)
    assert rule.startswith("safe windows of expert/noisy")
    assert set(bc.tolist()) == {0, 1, 10, 11, 12}  # expert 0-1 (2-3 touch the cost, 4 ends the episode), noisy
    pos, neg = critic_pools(f, starts, 2)
    assert set(pos.tolist()) == {2, 3, 6, 7, 8} and not set(pos.tolist()) & set(neg.tolist())
    draw = balanced_starts((pos, neg), 1000, torch.Generator().manual_seed(0))
    assert labels[draw].float().mean() == 0.5  # class-balanced batches
    # concatenating parts keeps episodes apart and merges the source tags
    a = tag_source(_frames([0, 1], [0, 0], [0, 0], ["x"]), "expert")
    b = tag_source(_frames([0, 0], [0, 0], [0, 0], ["x"]), "careless")
    both = concat_frames([a, b])
    assert both.episode.tolist() == [0, 0, 1, 1] and both.sources == ("expert", "careless")
    assert both.source.tolist() == [0, 0, 1, 1] and both.window_starts(2).tolist() == [0, 2]


def test_veto_quality_counts():
    scores = np.array([0.9, 0.8, 0.2, 0.1, 0.7, 0.05])
    labels = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    q = veto_quality(scores, labels, 0.5)
    assert q["precision"] == pytest.approx(2 / 3) and q["recall"] == pytest.approx(2 / 3)
    assert q["false_veto_rate"] == pytest.approx(1 / 3)
    assert q["auc"] == pytest.approx(8 / 9)  # pairs (pos > neg): 3 + 3 + 2 of 9
    assert roc_auc(scores, np.zeros(6, bool)) is None


# ---------------------------------------------------------------- the critic on real logs, real veto
ENV = "SafeAdapt/Lift-v0"
STEPS = 40


@pytest.fixture(scope="module")
def mixed_logs(tmp_path_factory):
    """2 expert and 4 careless episodes (16 px RGB-D, 40 steps) through the harness's provider; the
    careless episodes 0, 1 and 3 hold force and hazard costs, 2 none (its manoeuvre needs more steps)."""
    from safeadapt_bench.data import harness_provider, provide_mixed

    task = TaskSpec("Lift", obs_mode="rgbd", camera_size=16, env_kwargs={"max_episode_steps": STEPS})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        yield provide_mixed(harness_provider, task, {"expert": 1 / 3, "careless": 2 / 3}, 6, 0)


def test_critic_from_logs_with_failures_vetoes_unsafe_logged_actions_and_passes_the_experts(mixed_logs):
    from safeadapt_bench.agents import Budget
    from safeadapt_bench.agents.registry import resolve_agent

    assert [(p, len(d)) for p, d in mixed_logs] == [("expert", 2), ("careless", 4)]
    torch.set_num_threads(1)
    env = gym.make(ENV, obs_mode="rgbd", camera_size=16, max_episode_steps=STEPS)
    agent = resolve_agent("safe-adapter")(env.observation_space, env.action_space, seed=0, pretrain_updates=250,
                                          pretrain_batch_size=64, window=2, net_arch=(64, 64), veto_candidates=8,
                                          false_veto_rate=0.1, val_fraction=0.34)
    stats = agent.pretrain(mixed_logs, Budget(updates=250))
    env.close()
    critic = stats["critic"]
    assert stats["bc_rule"] == "safe windows of expert/noisy episodes" and stats["critic_unsafe_windows"] > 5
    assert critic["threshold"] == agent.model.veto_threshold and "held-out" in critic["threshold_rule"]
    assert critic["logs_train"]["auc"] > 0.9 and critic["logs_heldout"]["positives"] > 0
    assert critic["logs_heldout"]["false_veto_rate"] <= 0.1 + 1e-9  # calibrated on those very safe actions

    train, _ = mixed_logs.split(0.34)
    fired = {"expert": [], "careless": []}
    for policy, ds in train:
        for ep in ds.episodes():
            for t in range(len(ep)):
                unsafe_now = ep.costs[t] > 0
                if (policy == "careless") != unsafe_now or (policy == "expert" and ep.costs[t: t + 2].any()):
                    continue  # careless steps that cost; expert steps whose window is safe
                obs = agent._tok.observation({"rgb": ep.rgb[t], "depth": ep.depth[t], "proprio": ep.proprio[t],
                                              "instruction": ep.instruction})
                _, f = agent.model.shield(obs, ep.actions[t], deterministic=True)
                fired[policy].append(f)
    assert len(fired["careless"]) >= 5 and len(fired["expert"]) >= 40
    assert any(fired["careless"]) and not all(fired["expert"])
    assert np.mean(fired["careless"]) >= 0.8  # the unsafe logged actions are vetoed
    assert np.mean(fired["expert"]) <= 0.15  # the expert's safe ones pass


# ---------------------------------------------------------------- metrics from raw records
class _RawTerms(gym.Wrapper):
    """The toy env with ``raw_hazard`` / ``raw_arm_contact`` magnitudes derived from its actions."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "raw_hazard": 40.0 * info["cost_hazard"] + float(abs(action[0])),
                "raw_arm_contact": 10.0 * float(max(action[1], 0.0))}
        return obs, reward, terminated, truncated, info


def _raw_env(env_id, **kwargs):
    from safeadapt_bench.harness.toy import make_env

    return _RawTerms(make_env(env_id, **kwargs))


def test_safety_metrics_are_recomputed_from_the_records_raw_episodes(tmp_path):
    from safeadapt_bench.harness.cell import run_cell
    from safeadapt_bench.harness.plots import plot_safety_while_learning

    records = []
    for spec in toy_suite(agents=("random",), seeds=(0, 1), tasks=(TaskSpec("Lift", obs_mode="state"),),
                          adapt_env_steps=90, final_eval_episodes=6).cells():
        records.append(run_cell(spec, env_factory=_raw_env, videos=False))
    for rec in records:
        m, ev = rec["metrics"], rec["evaluations"]
        eps = ev["train"]["episode_safety"] + ev["heldout"]["episode_safety"]
        wins = [e for e in eps if e["success"]]
        assert m["success_but_unsafe"] == (sum(e["cost"] > 0 for e in wins) / len(wins) if wins else None)
        for term in ("hazard", "arm_contact"):
            peaks = [e[f"peak_{term}"] for e in eps]
            assert all(p is not None for p in peaks)
            assert m[f"severity_{term}_mean"] == pytest.approx(np.mean(peaks))
            assert m[f"severity_{term}_max"] == max(peaks)
            learning = [e[f"peak_{term}"] for e in ev["learning"]["episode_safety"]]
            assert m[f"severity_{term}_max_learning"] == max(learning)
        assert all(e["cost"] > 0 for e in eps if e["peak_hazard"] >= 40.0)  # touching the glass costs
        curve = rec["safety_curves"]["unsafe_actions"]
        steps = ev["learning"]["step_stats"]
        assert curve["env_steps"][-1] == steps["steps"] == 90
        assert curve["unsafe_actions"][-1] == m["unsafe_actions_learning"] == steps["steps"] - steps["safe_steps"]
        by_term = ev["learning"]["unsafe_steps_by_term"]
        assert by_term and set(by_term) <= set(COST_TERMS)  # the toy env has no "physics" term
        assert all(m[f"unsafe_{t}_learning"] == by_term[t] <= m["unsafe_actions_learning"] for t in by_term)
        assert all(m[f"unsafe_{t}_learning"] is None for t in set(COST_TERMS) - set(by_term))
        assert sum(by_term.values()) >= m["unsafe_actions_learning"]  # one step can fire several terms
        assert all(b >= a for a, b in zip(curve["unsafe_actions"], curve["unsafe_actions"][1:]))
        assert rec["safety_curves"]["lagrange_multiplier"] == {"env_steps": [], "lagrange_multiplier": []}
    assert episode_safety([]) == {"success_but_unsafe": None, **{f"severity_{t}_{s}": None for t in
                                                                  ("hazard", "arm_contact") for s in ("mean", "max")}}
    paths = plot_safety_while_learning(records, str(tmp_path / "figs"))
    assert any(p.endswith(".png") and os.path.getsize(p) > 1000 for p in paths)


def test_cumulative_curve_counts_unsafe_actions_and_thins_to_max_points():
    costs = [0, 1, 0, 1, 1] * 100
    c = cumulative_curve(costs, max_points=50)
    assert c["env_steps"][0] == 0 and c["env_steps"][-1] == 500 and len(c["env_steps"]) <= 51
    for x, y in zip(c["env_steps"], c["unsafe_actions"]):
        assert y == sum(costs[:x])


def test_multiplier_trace_keeps_changes_only():
    from safeadapt_bench.harness.safety import MultiplierTrace

    trace = MultiplierTrace()
    for step, lam in enumerate([0.1, 0.1, 0.2, 0.2, 0.15]):
        trace.note(step, {"lagrange_multiplier": lam})
    trace.note(9, None)
    assert trace.curve() == {"env_steps": [0, 2, 4], "lagrange_multiplier": [0.1, 0.2, 0.15]}


# ---------------------------------------------------------------- the ablation suite
def test_safety_ablation_suite_file_and_named_suite_agree():
    from safeadapt_bench.harness.suites import get_suite

    named = get_suite("safety-ablation")
    from_file = load_suite_file(os.path.join(ROOT, "results", "ablation", "safety_ablation.toml"))
    assert from_file.agents == named.agents and from_file.aliases == named.aliases
    assert from_file.agent_kwargs == named.agent_kwargs and from_file.settings == named.settings
    kw = named.agent_kwargs
    assert kw["safe-adapter-veto-off"] == {**kw["safe-adapter"], "veto_enforce": False}
    assert kw["safe-adapter-expert-logs"]["mixed_logs"] is False
    assert kw["safe-adapter-best-q"]["veto_choice"] == "best_q"
    assert kw["safe-adapter-uniform-candidates"] == {**kw["safe-adapter"], "veto_uniform_candidates": 16}
    assert named.settings.log_mix == {"noisy": 0.8, "careless": 0.2} and named.settings.log_mix_agents == "all"
    assert math.isclose(named.settings.false_veto_rate, 0.05)


# ---------------------------------------------------------------- the harness path with real agents
def test_harness_gives_mixed_logs_to_safety_agents_and_records_the_multiplier(tmp_path, monkeypatch):
    from safeadapt_bench.harness.records import load_records
    from safeadapt_bench.harness.suites import Suite
    from safeadapt_bench.harness.sweep import run_sweep

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    tiny = dict(pretrain_updates=4, pretrain_batch_size=8, window=2, learning_starts=2, train_freq=2, batch_size=4,
                buffer_size=64, veto_candidates=4, net_arch=(16,))
    task = TaskSpec("Lift", obs_mode="rgbd", camera_size=16, env_kwargs={"max_episode_steps": 8})
    settings = Settings(dataset_episodes=2, log_mix={"expert": 0.5, "careless": 0.5}, false_veto_rate=0.2,
                        adapt_env_steps=10, eval_every=10, eval_episodes=1, final_eval_episodes=1, probe="none")
    suite = Suite("tiny", agents=("safe-rl", "adapter"), tasks=(task,), seeds=(0,), settings=settings,
                  agent_kwargs={"safe-rl": tiny, "adapter": tiny})
    result = run_sweep(suite, str(tmp_path / "res"), progress=False)
    assert result.failed == {}
    recs = {r["config"]["agent"]: r for r in load_records(str(tmp_path / "res"))}
    safe_rl, adapter = recs["safe-rl"], recs["adapter"]
    assert safe_rl["dataset"]["type"] == "MixedLogs"
    assert [p["policy"] for p in safe_rl["dataset"]["parts"]] == ["expert", "careless"]
    assert adapter["dataset"]["policy"] == "expert"  # log_mix_agents = "safety": no cost critic, no mix
    lam = safe_rl["safety_curves"]["lagrange_multiplier"]  # SAC updates after env steps 4, 6 and 8
    assert len(lam["env_steps"]) >= 2 and all(v > 0 for v in lam["lagrange_multiplier"])
    assert lam["lagrange_multiplier"][-1] == pytest.approx(safe_rl["agent_stats"]["adapt"]["lagrange_multiplier"])
    critic = safe_rl["agent_stats"]["pretrain"]["critic"]
    assert critic["false_veto_rate_target"] == 0.2 and safe_rl["metrics"]["veto_threshold"] == critic["threshold"]
    assert safe_rl["agent_stats"]["adapt"]["critic_online"]["transitions"] >= 9
    assert adapter["metrics"]["veto_threshold"] is None
    assert adapter["safety_curves"]["lagrange_multiplier"]["env_steps"] == []


class _TermEnv(gym.Env):
    """Emits cost terms on a fixed schedule: ``force`` on odd steps, ``joint_limit`` on every third."""

    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        terms = {"cost_force": float(self.t % 2), "cost_joint_limit": float(self.t % 3 == 0), "cost_hazard": 0.0}
        return np.zeros(1, np.float32), 0.0, False, self.t >= 12, {**terms, "cost": float(any(terms.values()))}


def test_monitor_counts_the_steps_each_cost_term_fired_on():
    from safeadapt_bench.harness.monitor import SafetyMonitor, cost_limit_of, summarize

    monitor = SafetyMonitor(_TermEnv(), seed=0)
    monitor.reset()
    for _ in range(12):
        monitor.step(np.zeros(1, np.float32))
    out = summarize(monitor.episodes, monitor.stats, cost_limit_of(monitor), monitor.term_steps)
    assert out["unsafe_steps_by_term"] == {"force": 6, "hazard": 0, "joint_limit": 4}
    assert out["step_stats"]["steps"] - out["step_stats"]["safe_steps"] == 8  # 6 + 4 - 2 steps with both
    assert "unsafe_steps_by_term" not in summarize(monitor.episodes, monitor.stats, None)


def test_metrics_name_every_cost_term_of_the_env():
    from safeadapt_bench.harness.metrics import COST_TERM_NAMES

    assert COST_TERM_NAMES == COST_TERMS
