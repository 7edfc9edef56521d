"""Each cost term fires in a scripted unsafe motion and stays at 0 in safe ones."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from safeadapt_bench.envs.costs import COST_TERMS


@pytest.fixture(scope="module")
def env():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state", max_episode_steps=1000)
    yield env
    env.close()


def run(env, policy, steps, seed=0):
    """Roll ``policy(obs, t)`` out; return per-term counts of firing steps and the infos."""
    obs, _ = env.reset(seed=seed)
    fired = dict.fromkeys(COST_TERMS, 0)
    infos = []
    for t in range(steps):
        obs, _, _, _, info = env.step(np.asarray(policy(obs, t), np.float32))
        infos.append(info)
        for term in COST_TERMS:
            fired[term] += int(info[f"cost_{term}"])
        assert info["cost"] == float(any(info[f"cost_{k}"] for k in COST_TERMS))
    return fired, infos


def action(**axes):
    a = np.zeros(7)
    for i, name in enumerate(("x", "y", "z", "rx", "ry", "rz", "grip")):
        a[i] = axes.get(name, 0.0)
    return a


def test_hovering_is_safe(env):
    fired, infos = run(env, lambda o, t: action(), 40)
    assert sum(fired.values()) == 0, fired
    assert all(i["cost"] == 0 for i in infos)


def test_gentle_approach_is_safe(env):
    def approach(obs, t):  # move slowly to 12 cm above the object
        to_obj = obs["state"][17:20].copy()
        to_obj[2] += 0.12
        return action(**dict(zip("xyz", np.clip(5 * to_obj, -0.3, 0.3))))
    fired, infos = run(env, approach, 80)
    assert sum(fired.values()) == 0, fired
    assert np.linalg.norm(infos[-1]["raw_force"]) == 0


def test_gripper_driven_into_table_fires_force(env):
    fired, infos = run(env, lambda o, t: action(z=-1, grip=1), 40)
    assert fired["force"] > 0
    assert max(i["raw_force"] for i in infos) > env.unwrapped.costs.force_threshold
    assert fired["hazard"] == 0


def test_tilted_wrist_pressed_down_fires_arm_contact(env):
    fired, infos = run(env, lambda o, t: action(ry=1) if t < 12 else action(z=-1), 60)
    assert fired["arm_contact"] > 0
    assert max(i["raw_arm_contact"] for i in infos) > 0


def test_arm_swept_through_hazard_fires_hazard(env):
    def sweep(obs, t):  # drive the gripper straight at the glass
        return action(**dict(zip("xyz", np.clip(10 * obs["state"][20:23], -1, 1))))
    fired, infos = run(env, sweep, 60)
    assert fired["hazard"] > 0
    assert max(i["raw_hazard"] for i in infos) > 0


def test_joint_pushed_to_limit_fires_joint_limit(env):
    fired, infos = run(env, lambda o, t: action(x=1, z=0.5), 80)
    assert fired["joint_limit"] > 0
    assert min(i["raw_joint_limit"] for i in infos) < env.unwrapped.costs.joint_limit_margin


def test_physics_blow_up_truncates_with_cost(env):
    env.reset(seed=0)
    env.unwrapped.scene.sim.data.qvel[:] = np.nan
    obs, reward, terminated, truncated, info = env.step(action())
    assert truncated and not terminated
    assert info["physics_unstable"] and info["cost"] == 1.0 and info["cost_physics"] == 1.0
    assert obs in env.observation_space
    with pytest.raises(gym.error.ResetNeeded):
        env.step(action())
    env.reset(seed=1)
    _, _, _, truncated, info = env.step(action())
    assert not truncated and info["cost"] == 0.0


def test_cost_limit_follows_safety_gymnasium_convention(env):
    assert env.unwrapped.cost_limit == pytest.approx(25 * 150 / 1000)
