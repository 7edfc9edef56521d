"""The registered environments: API conformance, observations, seeding, bad input."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import safeadapt_bench
from safeadapt_bench.envs.categories import CATEGORIES, SPLITS, instructions
from safeadapt_bench.envs.registration import registered_ids

IDS = registered_ids()


def test_ids_registered():
    assert IDS == ["SafeAdapt/Lift-Heldout-v0", "SafeAdapt/Lift-v0",
                   "SafeAdapt/LiftAmong-Heldout-v0", "SafeAdapt/LiftAmong-v0",
                   "SafeAdapt/PickPlace-Heldout-v0", "SafeAdapt/PickPlace-v0",
                   "SafeAdapt/PickPlaceAmong-Heldout-v0", "SafeAdapt/PickPlaceAmong-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_without_warnings(env_id):
    env = gym.make(env_id, camera_size=32, obs_mode="rgbd+state")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    messages = [str(w.message) for w in caught]
    assert messages == [], messages


def test_import_is_light_and_namespaced_make_works():
    code = ("import sys, gymnasium as gym\n"
            "import safeadapt_bench\n"
            "heavy = [m for m in ('robosuite', 'torch', 'mujoco') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert 'envs' not in sys.modules and 'baselines' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    code = ("import gymnasium as gym\n"
            "env = gym.make('safeadapt_bench:SafeAdapt/Lift-v0', obs_mode='state')\n"
            "obs, info = env.reset(seed=0)\n"
            "assert info['category'] in ('cube', 'ball', 'can', 'milk', 'bread')\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_splits_are_disjoint_and_known():
    for task, splits in SPLITS.items():
        assert not set(splits["train"]) & set(splits["heldout"]), task
        assert set(splits["train"]) | set(splits["heldout"]) <= set(CATEGORIES)


def test_rgbd_observation_contents():
    env = gym.make("SafeAdapt/Lift-Heldout-v0", camera_size=24)
    obs, info = env.reset(seed=5)
    assert obs["rgb"].shape == (24, 24, 3) and obs["rgb"].dtype == np.uint8
    assert obs["depth"].shape == (24, 24, 1) and obs["depth"].dtype == np.float32
    # Metric depth: the table and objects are 0.3 to 3 m from the camera.
    assert 0.2 < float(np.median(obs["depth"])) < 3.0
    assert obs["rgb"].std() > 5, "image is blank"
    assert obs["proprio"].shape == (30,) and obs["proprio"].dtype == np.float32
    assert info["category"] in SPLITS["Lift"]["heldout"]
    assert obs["instruction"] in instructions("Lift", info["category"])
    assert obs in env.observation_space
    env.close()


def test_instruction_and_category_follow_the_seed():
    env = gym.make("SafeAdapt/PickPlace-v0", obs_mode="state")
    drawn = {env.reset(seed=s)[1]["category"] for s in range(12)}
    assert len(drawn) >= 3, drawn
    texts = {env.reset(seed=s, options={"category": "milk"})[0]["instruction"] for s in range(12)}
    assert len(texts) >= 3 and all("milk" in t for t in texts)
    env.close()


def _rollout(env, seed, steps=25):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    trace = [obs]
    for _ in range(steps):
        obs, reward, term, trunc, info = env.step(rng.uniform(-1, 1, 7).astype(np.float32))
        trace.append((obs, reward, info["cost"], info["raw_force"], term, trunc))
    return trace


def _digest(trace) -> str:
    import hashlib
    import pickle
    return hashlib.sha256(pickle.dumps(trace)).hexdigest()


def test_same_seed_same_trajectory_in_one_process():
    a = gym.make("SafeAdapt/Lift-v0", camera_size=16)
    b = gym.make("SafeAdapt/Lift-v0", camera_size=16)
    # Interleave the two envs and disturb the global generators in between.
    a.reset(seed=3)
    b.reset(seed=3)
    np.random.seed(123)
    ta = _rollout(a, seed=7)
    np.random.rand(10)
    tb = _rollout(b, seed=7)
    assert _digest(ta) == _digest(tb)
    assert _digest(_rollout(a, seed=8)) != _digest(ta)
    a.close()
    b.close()


DIGEST_SCRIPT = """
import gymnasium as gym, safeadapt_bench, sys
sys.path.insert(0, {tests!r})
from test_envs import _rollout, _digest
env = gym.make("SafeAdapt/PickPlace-Heldout-v0", camera_size=16, obs_mode="rgbd+state")
print(_digest(_rollout(env, seed=11)))
"""


def test_same_seed_same_trajectory_across_processes():
    import os
    script = DIGEST_SCRIPT.format(tests=os.path.dirname(__file__))
    digests = {subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                              text=True).stdout.strip().splitlines()[-1] for _ in range(2)}
    env = gym.make("SafeAdapt/PickPlace-Heldout-v0", camera_size=16, obs_mode="rgbd+state")
    digests.add(_digest(_rollout(env, seed=11)))
    assert len(digests) == 1, digests


@pytest.mark.parametrize("robot", ["Sawyer", "UR5e", "Kinova3", "IIWA", "Jaco"])
def test_other_robots(robot):
    env = gym.make("SafeAdapt/Lift-v0", robot=robot, obs_mode="state")
    obs, _ = env.reset(seed=0)
    assert env.action_space.shape == (7,)
    for _ in range(3):
        obs, _, _, _, info = env.step(np.zeros(7, np.float32))
    assert obs in env.observation_space
    assert info["cost"] == 0.0, {k: v for k, v in info.items() if k.startswith("cost")}
    env.close()


def test_render_rgb_array():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state", render_mode="rgb_array", render_size=48)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 48, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()


def test_terminate_on_success_is_configurable():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state", terminate_on_success=True)
    env.reset(seed=0)
    # Lift the object by hand: move it 10 cm up and hold it there.
    scene = env.unwrapped.scene
    joint = scene.active_object.joints[0]
    qpos = scene.sim.data.get_joint_qpos(joint).copy()
    qpos[2] += 0.10
    scene.sim.data.set_joint_qpos(joint, qpos)
    scene.sim.model.body_gravcomp[scene.active_body_id] = 1.0
    _, reward, terminated, truncated, info = env.step(np.zeros(7, np.float32))
    assert info["success"] and terminated and not truncated and reward == 1.0
    scene.sim.model.body_gravcomp[scene.active_body_id] = 0.0
    env.close()


# ---------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def state_env():
    env = gym.make("SafeAdapt/Lift-v0", obs_mode="state")
    yield env
    env.close()


@pytest.mark.parametrize("action, error, words", [
    (np.zeros(6, np.float32), ValueError, "shape"),
    (np.zeros((1, 7), np.float32), ValueError, "shape"),
    (np.array(["a"] * 7), TypeError, "dtype"),
    (np.zeros(7, complex), TypeError, "dtype"),
    (np.array([0, 0, np.nan, 0, 0, 0, 0], np.float32), ValueError, "NaN"),
    (np.array([0, 0, 0, np.inf, 0, 0, 0]), ValueError, "inf"),
])
def test_bad_actions_are_rejected(state_env, action, error, words):
    state_env.reset(seed=0)
    with pytest.raises(error, match=words):
        state_env.step(action)
    # The episode is unharmed: a valid step still works.
    state_env.step(np.zeros(7, np.float32))


def test_integer_and_list_actions_are_accepted(state_env):
    state_env.reset(seed=0)
    state_env.step([0, 0, 0, 0, 0, 0, 1])


@pytest.mark.parametrize("kwargs, words", [
    ({"categories": ["teapot"]}, "Unknown category"),
    ({"categories": []}, "empty"),
    ({"robot": "R2D2"}, "Unknown robot"),
    ({"camera_size": 0}, "camera_size"),
    ({"camera_size": -8}, "camera_size"),
    ({"obs_mode": "rgb"}, "obs_mode"),
    ({"split": "test"}, "Unknown split"),
    ({"object_colours": "rainbow"}, "object_colours"),
])
def test_bad_constructor_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        gym.make("SafeAdapt/Lift-v0", **kwargs)


def test_unknown_task_id():
    with pytest.raises(gym.error.Error, match="Lfit"):
        gym.make("SafeAdapt/Lfit-v0")


def test_bad_reset_options(state_env):
    with pytest.raises(ValueError, match="not in this env's categories"):
        state_env.reset(options={"category": "lemon"})
    with pytest.raises(ValueError, match="Unknown reset options"):
        state_env.reset(options={"difficulty": 3})


def test_step_before_reset():
    from safeadapt_bench.envs.lift import LiftEnv
    env = LiftEnv(obs_mode="state")
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        env.step(np.zeros(7, np.float32))
    env.close()
    wrapped = gym.make("SafeAdapt/Lift-v0", obs_mode="state")
    with pytest.raises(gym.error.ResetNeeded):
        wrapped.step(np.zeros(7, np.float32))
    wrapped.close()


def test_package_version():
    assert safeadapt_bench.__version__


PRESET_GL = """
import mujoco, robosuite  # imported first, with MUJOCO_GL already set: Mesa's LLVM loads early
import gymnasium as gym, numpy as np, safeadapt_bench
env = gym.make("SafeAdapt/Lift-v0", camera_size=16)
env.reset(seed=0)
import open_clip  # torch's lazy triton import would clash with Mesa's LLVM
obs, *_ = env.step(np.zeros(7, np.float32))
assert obs["rgb"].std() > 5
print("ok")
"""


@pytest.mark.parametrize("backend", ["osmesa", "egl"])
def test_preset_render_backend_survives_torch_import(backend):
    import os

    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    out = subprocess.run([sys.executable, "-c", PRESET_GL], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


@pytest.mark.parametrize("robot", ["Panda", "UR5e", "IIWA"])
def test_parallel_grippers_close(robot):
    """Guards the mujoco pin: from mujoco 3.8 robosuite's Robotiq grippers stop 6 cm apart."""
    env = gym.make("SafeAdapt/Lift-v0", robot=robot, obs_mode="state")
    obs, _ = env.reset(seed=0)
    opened = obs["proprio"][7]
    for _ in range(30):
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, 1], np.float32))
    assert obs["proprio"][7] < 0.035 < opened, (opened, obs["proprio"][7])
    env.close()


def test_random_object_colours_change_the_image_not_the_physics():
    """``object_colours="random"``: a seeded tint per episode on the same seeded layout and trajectory;
    instructions drop the colour words a tint would contradict."""
    fixed = gym.make("SafeAdapt/Lift-v0", camera_size=32, obs_mode="rgbd+state")
    tinted = gym.make("SafeAdapt/Lift-v0", camera_size=32, obs_mode="rgbd+state", object_colours="random")
    seen = set()
    for seed in range(3):
        a, _ = fixed.reset(seed=seed, options={"category": "cube"})
        b, info = tinted.reset(seed=seed, options={"category": "cube"})
        np.testing.assert_array_equal(a["state"], b["state"])  # same placement
        assert np.abs(a["rgb"].astype(int) - b["rgb"].astype(int)).max() > 50  # another colour
        assert "red" not in info["instruction"].split()
        for _ in range(5):
            act = np.array([0.3, -0.2, -0.5, 0, 0, 0, 1], dtype=np.float32)
            a, *_ = fixed.step(act)
            b, *_ = tinted.step(act)
        np.testing.assert_array_equal(a["proprio"], b["proprio"])
        np.testing.assert_array_equal(a["depth"], b["depth"])
        seen.add(b["rgb"].tobytes())
    again, _ = tinted.reset(seed=1, options={"category": "cube"})
    other = gym.make("SafeAdapt/Lift-v0", camera_size=32, object_colours="random")
    first, _ = other.reset(seed=1, options={"category": "cube"})
    np.testing.assert_array_equal(again["rgb"], first["rgb"])  # the tint follows the seed
    for e in (fixed, tinted, other):
        e.close()
    assert len(seen) == 3
    assert set(instructions("Lift", "cube", colour_words=False)) < set(instructions("Lift", "cube"))


def test_painted_categories_change_their_colour_only():
    """``object_colours={category: rgb}``: that category drawn in the colour (same layout and physics,
    no colour word in its instructions); the others keep their own; bad mappings are refused."""
    blue = (0.1, 0.45, 0.9)
    own = gym.make("SafeAdapt/Lift-v0", camera_size=32, obs_mode="rgbd+state", categories=["cube", "ball"])
    painted = gym.make("SafeAdapt/Lift-v0", camera_size=32, obs_mode="rgbd+state", categories=["cube", "ball"],
                       object_colours={"cube": blue})
    for category, changes in (("cube", True), ("ball", False)):
        for seed in range(3):
            a, _ = own.reset(seed=seed, options={"category": category})
            b, info = painted.reset(seed=seed, options={"category": category})
            np.testing.assert_array_equal(a["state"], b["state"])
            np.testing.assert_array_equal(a["depth"], b["depth"])
            diff = np.abs(a["rgb"].astype(int) - b["rgb"].astype(int))
            assert (diff.max() > 50) == changes, (category, seed, diff.max())
            if changes:  # the object's pixels take the new colour: blue over red
                moved = diff.sum(-1) > 50
                assert b["rgb"][moved][:, 2].mean() > b["rgb"][moved][:, 0].mean()
                assert "red" not in info["instruction"].split()
    own.close()
    painted.close()
    with pytest.raises(ValueError, match="three numbers"):
        gym.make("SafeAdapt/Lift-v0", object_colours={"cube": (1.5, 0, 0)})
    with pytest.raises(ValueError, match="unknown category"):
        gym.make("SafeAdapt/Lift-v0", object_colours={"cubes": blue})
    with pytest.raises(ValueError, match="Unknown object_colours"):
        gym.make("SafeAdapt/Lift-v0", object_colours="pastel")


def test_closing_one_env_leaves_another_envs_images_intact():
    """robosuite frees a render context's GL objects in whichever context is current; closing one env
    while another was drawing last must not free the other's framebuffer."""
    def make():
        return gym.make("SafeAdapt/Lift-v0", camera_size=32, obs_mode="rgbd+state")

    keep = make()
    reference, _ = keep.reset(seed=0)
    for _ in range(2):
        other = make()
        other.reset(seed=1)
        keep.reset(seed=0)  # ``keep`` drew last: its context is the current one
        other.close()
        obs, _ = keep.reset(seed=0)
        assert np.isfinite(obs["depth"]).all()
        np.testing.assert_array_equal(obs["rgb"], reference["rgb"])
        np.testing.assert_array_equal(obs["depth"], reference["depth"])
    keep.close()
