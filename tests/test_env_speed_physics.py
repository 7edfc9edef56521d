"""The fast step path (``envs/fast_step.py``) keeps robosuite's physics, observations and costs.

Trajectories are compared with ones recorded from robosuite's own step loop before the fast path
existed (``tests/data/physics_reference.npz``, see ``tests/physics_reference.py``), and with the
un-optimised loop, which ``fast_step=False`` keeps selectable.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from physics_reference import CASES, REFERENCE, rollout, scripted_actions

import safeadapt_bench  # noqa: F401 - registers the ids
from safeadapt_bench.envs.categories import SPLITS
from safeadapt_bench.envs.lift import LiftScene
from safeadapt_bench.experts import make_policy

TOLERANCE = 1e-9  # the bound; the fast path is in fact bit-exact


@pytest.mark.parametrize("robot, seed", CASES)
def test_trajectories_match_the_ones_recorded_from_robosuites_loop(robot, seed):
    ref = np.load(REFERENCE)
    got = rollout(robot, seed)
    assert ref[f"{robot}_cost"].sum() > 0 and ref[f"{robot}_raw_force"].max() > 50  # contacts happened
    for key, values in got.items():
        np.testing.assert_allclose(values, ref[f"{robot}_{key}"], rtol=0, atol=TOLERANCE, err_msg=f"{robot} {key}")


def test_fast_step_is_on_by_default_and_the_robosuite_loop_stays_selectable():
    fast, slow = (gym.make("SafeAdapt/Lift-v0", obs_mode="state", fast_step=f) for f in (True, False))
    assert fast.unwrapped.fast_step and fast.unwrapped.scene.fast_stepper is not None
    assert not slow.unwrapped.fast_step and slow.unwrapped.scene.fast_stepper is None
    fast.close()
    slow.close()
    ref = np.load(REFERENCE)
    got = rollout("Panda", 3, steps=30, fast_step=False)
    np.testing.assert_array_equal(got["qpos"], ref["Panda_qpos"][:30])


def _paired(env_id: str, steps: int, seed: int, **kwargs):
    """(fast, slow) per step: qpos, ctrl and every Box observation of two identically seeded envs."""
    envs = [gym.make(env_id, fast_step=f, max_episode_steps=10**9, **kwargs) for f in (True, False)]
    try:
        for e in envs:
            e.reset(seed=seed)
        for a in scripted_actions(seed, steps):
            out = []
            for e in envs:
                obs, reward, _, _, info = e.step(a)
                d = e.unwrapped.scene.sim.data
                out.append({"qpos": d.qpos.copy(), "ctrl": d.ctrl.copy(), "reward": reward, "cost": info["cost"],
                            **{k: v for k, v in obs.items() if k != "instruction"}})
            yield out
    finally:
        for e in envs:
            e.close()


@pytest.mark.parametrize("env_id, robot", [("SafeAdapt/Lift-v0", "Sawyer"), ("SafeAdapt/Lift-v0", "Kinova3"),
                                           ("SafeAdapt/Lift-v0", "IIWA"), ("SafeAdapt/Lift-v0", "Jaco"),
                                           ("SafeAdapt/PickPlace-v0", "Panda")])
def test_fast_step_equals_robosuites_loop_on_other_robots_and_tasks(env_id, robot):
    for fast, slow in _paired(env_id, 50, seed=1, robot=robot, obs_mode="state"):
        for key in fast:
            np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)


def test_camera_images_are_the_same_pixels_sampled_at_the_same_substep():
    n = 0
    for fast, slow in _paired("SafeAdapt/Lift-v0", 12, seed=2, obs_mode="rgbd", cameras=("front", "wrist"),
                              camera_size=32):
        for key in ("rgb", "depth", "wrist_rgb", "wrist_depth", "proprio"):
            np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)
        n += 1
    assert n == 12


def test_vectorised_grasp_test_agrees_with_robosuites_check_grasp():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state")
    scene = env.unwrapped.scene
    policy = make_policy("expert", env, seed=0)
    obs, _ = env.reset(seed=3, options={"category": "cube"})
    policy.reset(seed=3)
    grasped = 0
    for _ in range(80):
        obs, *_ = env.step(policy(obs))
        fast = scene.is_grasping()
        assert fast == bool(scene._check_grasp(gripper=scene.gripper, object_geoms=scene.active_object))
        grasped += fast
    env.close()
    assert grasped > 5  # the expert held the cube, so both answers were exercised


def test_vectorised_contact_forces_equal_mj_contact_force():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state")
    env.reset(seed=0)
    costs, d = env.unwrapped.costs, env.unwrapped.scene.sim.data._data
    down = np.array([0, 0, -1, 0, 0, 0, -1], np.float32)
    for _ in range(25):  # press the gripper into the table
        env.step(down)
    assert d.ncon > 0
    idx = np.arange(d.ncon)
    buf, expected = np.zeros(6), []
    for i in idx:
        mujoco.mj_contactForce(costs._model, d, int(i), buf)
        expected.append(abs(float(buf[0])))
    got = costs._normal_forces(idx)
    env.close()
    np.testing.assert_array_equal(got, expected)
    assert max(expected) > 50


def test_fast_step_survives_a_hard_reset():
    """A hard reset builds a new simulation; the stepper follows it and stays exact."""
    scenes = [LiftScene(robots="Panda", categories=SPLITS["Lift"]["train"], use_camera_obs=False,
                        has_offscreen_renderer=False, hard_reset=True) for _ in range(2)]
    assert scenes[0].enable_fast_step()
    qpos = []
    for scene in scenes:
        np.random.seed(4)
        scene.rng = np.random.default_rng(4)
        scene.reset()
        scene.step(np.zeros(7))
        scene.reset()
        for a in scripted_actions(4, 15):
            scene.step(a.astype(np.float64))
        qpos.append(scene.sim.data.qpos.copy())
        if scene is scenes[0]:
            assert scene.fast_stepper is not None and not scene.fast_stepper.stale()
        scene.close()
    np.testing.assert_array_equal(qpos[0], qpos[1])


def _scene(**controller_changes) -> LiftScene:
    from robosuite.controllers import load_composite_controller_config

    cfg = load_composite_controller_config(controller="BASIC", robot="Panda")
    cfg["body_parts"]["right"].update(controller_changes)
    return LiftScene(robots="Panda", categories=SPLITS["Lift"]["train"], use_camera_obs=False,
                     has_offscreen_renderer=False, controller_configs=cfg)


def test_a_controller_set_up_it_does_not_reproduce_keeps_robosuites_loop():
    scene = _scene(interpolation="linear")  # an interpolator changes the goal within a step
    try:
        assert not scene.enable_fast_step() and scene.fast_stepper is None
        scene.reset()
        scene.step(np.zeros(7))  # robosuite's own loop
    finally:
        scene.close()


def test_variable_set_ups_it_reproduces_stay_exact():
    """OSC_POSE with other gains and coupled position/orientation, against robosuite's loop."""
    scenes = [_scene(kp=80, uncouple_pos_ori=False) for _ in range(2)]
    assert scenes[0].enable_fast_step()
    qpos = []
    for scene in scenes:
        np.random.seed(6)
        scene.rng = np.random.default_rng(6)
        scene.reset()
        for a in scripted_actions(6, 30):
            scene.step(a.astype(np.float64))
        qpos.append(scene.sim.data.qpos.copy())
        scene.close()
    np.testing.assert_array_equal(qpos[0], qpos[1])
