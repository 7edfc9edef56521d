"""Scripted experts: they solve the tasks; the careless mode makes every cost term fire."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from safeadapt_bench.envs.base import ROBOTS
from safeadapt_bench.envs.costs import COST_TERMS
from safeadapt_bench.experts import make_policy
from safeadapt_bench.experts.policies import DEFAULT_TUNING, MANEUVERS, ROBOT_TUNING, RobotTuning


def rollout(env, policy, seed, category=None):
    obs, _ = env.reset(seed=seed, options={"category": category} if category else None)
    policy.reset(seed=seed)
    fired = dict.fromkeys(COST_TERMS, 0)
    success, steps, done = False, 0, False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        steps += 1
        success = success or info["success"]
        for term in COST_TERMS:
            fired[term] += int(info[f"cost_{term}"])
        done = terminated or truncated
    return success, fired, steps


@pytest.mark.parametrize("env_id, category", [
    ("SafeAdapt/Lift-v0", "milk"),
    ("SafeAdapt/Lift-Heldout-v0", "cereal"),
    ("SafeAdapt/PickPlace-v0", "can"),
    ("SafeAdapt/PickPlace-Heldout-v0", "lemon"),
    ("SafeAdapt/LiftAmong-Heldout-v0", "bottle"),  # the expert reads the named target from the state
    ("SafeAdapt/PickPlaceAmong-v0", "milk"),  # tall, carried above the distractors
])
def test_expert_succeeds_safely(env_id, category):
    env = gym.make(env_id, obs_mode="state", terminate_on_success=True)
    success, fired, steps = rollout(env, make_policy("expert", env, seed=0), seed=3, category=category)
    assert success, f"expert failed on {category}"
    assert sum(fired.values()) <= 0.02 * steps, fired
    env.close()


def test_expert_works_on_another_robot():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state", robot="UR5e", terminate_on_success=True)
    success, _, _ = rollout(env, make_policy("expert", env, seed=0), seed=1, category="cube")
    assert success
    env.close()


@pytest.mark.parametrize("env_id, category, seed", [
    ("SafeAdapt/Lift-v0", "can", 1),
    ("SafeAdapt/PickPlace-v0", "milk", 3),
])
def test_expert_holds_objects_with_the_jaco_hand(env_id, category, seed):
    # Episodes the untuned expert failed: the three fingers closed on the can / carton without holding it.
    env = gym.make(env_id, obs_mode="state", robot="Jaco", terminate_on_success=True)
    success, fired, steps = rollout(env, make_policy("expert", env, seed=0), seed=seed, category=category)
    assert success, f"Jaco expert failed on {category}"
    assert sum(fired.values()) <= 0.02 * steps, fired
    env.close()


def test_iiwa_places_near_its_base_without_folding_the_elbow_to_its_limit():
    # Seed 16 puts the pad 0.39 m from the IIWA's base: with the hand vertical, its elbow (J4) sat on
    # its limit for 28 steps of the carry, lower and release.
    env = gym.make("SafeAdapt/PickPlace-v0", obs_mode="state", robot="IIWA", terminate_on_success=True)
    success, fired, _ = rollout(env, make_policy("expert", env, seed=0), seed=16)
    assert success
    assert fired["joint_limit"] == 0, fired
    env.close()


def test_robot_tuning_table():
    assert set(ROBOT_TUNING) <= set(ROBOTS)
    assert DEFAULT_TUNING == RobotTuning()
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state", robot="Jaco")
    assert make_policy("expert", env)._tuning() is ROBOT_TUNING["Jaco"]
    env.close()


def test_careless_mode_fires_every_cost_term():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state", max_episode_steps=75)
    policy = make_policy("careless", env, seed=0)
    total = dict.fromkeys(COST_TERMS, 0)
    for episode in range(len(MANEUVERS)):  # one manoeuvre per episode, all of them in turn
        _, fired, _ = rollout(env, policy, seed=episode)
        for term, n in fired.items():
            total[term] += n
    for term in ("arm_contact", "force", "hazard", "joint_limit"):
        assert total[term] > 0, total
    env.close()


def test_noisy_mode_is_seeded_and_differs_from_expert():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state")
    obs, _ = env.reset(seed=0)
    expert, noisy_a, noisy_b = (make_policy(n, env, seed=4) for n in ("expert", "noisy", "noisy"))
    for p in (expert, noisy_a, noisy_b):
        p.reset(seed=4)
    a, b, c = expert(obs), noisy_a(obs), noisy_b(obs)
    assert np.array_equal(b, c) and not np.array_equal(a, b)
    env.close()


def test_bad_policy_requests():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="rgbd", camera_size=8)
    with pytest.raises(ValueError, match="privileged state"):
        make_policy("expert", env)
    with pytest.raises(ValueError, match="Unknown policy"):
        make_policy("reckless", env)
    env.close()



def test_one_step_without_progress_does_not_end_the_descent():
    """Under DART noise a descending step can fail to go down in mid-air; the descent ends (and the
    labels say "close") only after ``BLOCKED_STEPS`` such steps in a row. With one (as before), 12 of
    40 noisy Lift episodes started the grasp in mid-air."""
    from safeadapt_bench.experts.policies import BLOCKED_STEPS

    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state")
    policy = make_policy("expert", env, seed=0)
    obs, _ = env.reset(seed=0)
    policy.reset(seed=0)
    for _ in range(60):  # run the expert until it starts its descent
        obs, *_ = env.step(policy(obs))
        if policy.phase == "descend":
            break
    assert policy.phase == "descend"
    for _ in range(5):  # a few descending steps, so the first steps' grace is over
        obs, *_ = env.step(policy(obs))
    assert policy.phase == "descend"
    frozen = dict(obs)
    policy(frozen)  # progress since the last real step; from here on the same height: no progress
    phases = []
    for _ in range(BLOCKED_STEPS):
        policy(frozen)
        phases.append(policy.phase)
    env.close()
    assert BLOCKED_STEPS > 1
    assert phases[:-1] == ["descend"] * (BLOCKED_STEPS - 1) and phases[-1] == "grasp", phases
