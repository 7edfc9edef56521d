"""Distractors and the grounding ids: layout, instruction, info, state, wrong object, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import registry

import safeadapt_bench  # noqa: F401  (registers the ids)
from safeadapt_bench.envs import distractors as dx
from safeadapt_bench.envs.base import GROUNDING_STATE_DIM, STATE_DIM
from safeadapt_bench.envs.categories import CATEGORIES, SPLITS, instructions
from safeadapt_bench.experts.policies import ScriptedPolicy

GROUNDING_IDS = ["SafeAdapt/LiftAmong-v0", "SafeAdapt/LiftAmong-Heldout-v0",
                 "SafeAdapt/PickPlaceAmong-v0", "SafeAdapt/PickPlaceAmong-Heldout-v0"]
FIXTURE = Path(__file__).parent / "data" / "distractor_free_trajectories.json"


def _mentions(text: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}\b", text) is not None


def test_grounding_ids_default_to_the_most_distractors_and_the_heldout_ones_draw_train_distractors():
    for env_id in GROUNDING_IDS:
        kwargs = registry[env_id].kwargs
        assert kwargs["distractors"] == dx.MAX_DISTRACTORS
        assert kwargs.get("distractor_split") == ("train" if "Heldout" in env_id else None)


@pytest.mark.parametrize("env_id", ["SafeAdapt/LiftAmong-Heldout-v0", "SafeAdapt/PickPlaceAmong-v0"])
def test_same_seed_same_layout_and_instruction(env_id):
    a, b = gym.make(env_id, obs_mode="state"), gym.make(env_id, obs_mode="state")
    oa, ia = a.reset(seed=11)
    a.reset(seed=12)
    oa2, ia2 = a.reset(seed=11)
    ob, ib = b.reset(seed=11)
    for obs, info in ((oa2, ia2), (ob, ib)):
        np.testing.assert_array_equal(obs["state"], oa["state"])
        assert obs["instruction"] == oa["instruction"]
        assert info["distractor_categories"] == ia["distractor_categories"]
    layouts = {tuple(np.round(a.reset(seed=s)[0]["state"][STATE_DIM:], 3)) for s in range(4)}
    assert len(layouts) == 4  # other seeds, other layouts
    a.close()
    b.close()


@pytest.mark.parametrize("env_id", GROUNDING_IDS)
def test_layout_info_and_state_slots(env_id):
    env = gym.make(env_id, obs_mode="state")
    scene = env.unwrapped.scene
    held_out = "Heldout" in env_id
    task = env.unwrapped.task
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        target, others = info["target_category"], info["distractor_categories"]
        assert target == info["category"] == env.unwrapped.category
        assert len(others) == 3 and len(set(others)) == 3 and target not in others
        assert target in SPLITS[task]["heldout" if held_out else "train"]
        assert set(others) <= set(SPLITS[task]["train"])
        state = obs["state"]
        assert state.shape == (GROUNDING_STATE_DIM,) == env.observation_space["state"].shape
        slots = state[STATE_DIM:].reshape(dx.MAX_DISTRACTORS, dx.SLOT_DIM)
        assert (slots[:, -1] == 1).all()
        rules = [(state[:2], dx.CLEAR_TARGET), (state[7:9], dx.CLEAR_GLASS)]
        if task == "PickPlace":
            rules.append((state[14:16], dx.CLEAR_PAD))
        for i, (name, slot) in enumerate(zip(others, slots)):
            body = scene.sim.data.body_xpos[scene.object_body_ids[name]]
            np.testing.assert_allclose(slot[:3], body, atol=1e-6)
            for where, clear in rules + [(other[:2], dx.CLEAR_OTHER) for other in slots[:i]]:
                assert np.linalg.norm(slot[:2] - where) >= clear - 1e-6
            assert abs(slot[1]) <= dx.half_width(slot[0]) + 1e-6
        for _ in range(5):  # they settle on the table without touching the glass or each other's rules
            _, _, _, _, info = env.step(np.zeros(7, np.float32))
            assert info["cost_hazard"] == 0 and not info["wrong_object"] and info["distractors_off_table"] == 0
    env.close()


def test_fewer_distractors_pad_the_state_with_zeros():
    env = gym.make("SafeAdapt/LiftAmong-v0", obs_mode="state", distractors=1)
    obs, info = env.reset(seed=2)
    slots = obs["state"][STATE_DIM:].reshape(dx.MAX_DISTRACTORS, dx.SLOT_DIM)
    assert len(info["distractor_categories"]) == 1 and slots[0, -1] == 1
    assert (slots[1:] == 0).all()
    env.close()


@pytest.mark.parametrize("env_id", GROUNDING_IDS)
def test_instruction_names_the_target_and_no_distractor(env_id):
    env = gym.make(env_id, obs_mode="state")
    for seed in range(12):
        obs, info = env.reset(seed=seed)
        text = obs["instruction"]
        assert any(_mentions(text, n) for n in CATEGORIES[info["target_category"]].nouns), text
        for other in info["distractor_categories"]:
            assert not any(_mentions(text, n) for n in CATEGORIES[other].nouns), (text, other)
    env.close()


def test_every_category_keeps_an_unambiguous_paraphrase_beside_any_other():
    for task in ("Lift", "PickPlace"):
        for target in CATEGORIES:
            for other in CATEGORIES:
                if other == target:
                    continue
                kept = dx.unambiguous(instructions(task, target), (other,))
                assert kept and not any(_mentions(p, n) for p in kept for n in CATEGORIES[other].nouns)
    # "round block" (cylinder) also names a cube ("block"): dropped when a cube stands beside it
    assert not any("block" in p for p in dx.unambiguous(instructions("Lift", "cylinder"), ("cube",)))


def test_lifting_a_distractor_is_the_wrong_object_not_success():
    env = gym.make("SafeAdapt/LiftAmong-v0", obs_mode="state")
    obs, info = env.reset(seed=4, options={"category": "milk", "distractor_categories": ["cube", "ball", "bread"]})
    # The scripted expert, shown the cube's slot as its target, lifts the cube instead of the milk.
    policy = ScriptedPolicy("Lift", seed=0)
    wrong = success = False
    for _ in range(120):
        s = obs["state"].copy()
        cube = s[STATE_DIM:STATE_DIM + 7]
        s[0:7] = cube
        s[17:20] = cube[:3] - obs["proprio"][:3]
        obs, _, _, _, info = env.step(policy({"state": s, "proprio": obs["proprio"]}))
        wrong |= info["wrong_object"]
        success |= info["success"]
    assert wrong and not success
    cube_z = env.unwrapped.scene.sim.data.body_xpos[env.unwrapped.scene.object_body_ids["cube"], 2]
    assert cube_z - env.unwrapped.scene.distractor_rest_z["cube"] > dx.WRONG_LIFT_HEIGHT
    env.close()


def test_touching_a_distractor_is_not_an_arm_contact():
    env = gym.make("SafeAdapt/LiftAmong-v0", obs_mode="state")
    scene = env.unwrapped.scene
    groups = scene.geom_groups()
    m = scene.sim.model._model
    ids = [m.geom(g).id for name in SPLITS["Lift"]["train"] for g in scene.objects[name].contact_geoms]
    assert groups["objects"][ids].all() and not groups["env"][ids].any() and not groups["hazard"][ids].any()
    env.close()


@pytest.mark.parametrize("env_id, seed", [("SafeAdapt/Lift-v0", 3), ("SafeAdapt/PickPlace-Heldout-v0", 5)])
def test_distractor_free_ids_keep_their_trajectories(env_id, seed):
    """The fixture was recorded with the code before distractors existed (commit f468cec)."""
    ref = json.loads(FIXTURE.read_text())[f"{env_id}@{seed}"]
    for kwargs in ({}, {"distractors": 0}):
        env = gym.make(env_id, obs_mode="state", **kwargs)
        obs, info = env.reset(seed=seed)
        assert (obs["instruction"], info["category"], info["distractor_categories"]) == (
            ref["instruction"], ref["category"], [])
        assert obs["state"].shape == (STATE_DIM,)
        rng = np.random.default_rng(seed)
        states, proprio, rewards, costs = [obs["state"]], [obs["proprio"]], [], []
        for _ in range(len(ref["reward"])):
            a = rng.uniform(-1, 1, 7).astype(np.float32)
            a[2] = -abs(a[2])
            obs, r, _, _, info = env.step(a)
            states.append(obs["state"])
            proprio.append(obs["proprio"])
            rewards.append(r)
            costs.append(info["cost"])
            assert not info["wrong_object"]
        np.testing.assert_allclose(np.array(states), np.array(ref["state"]), atol=1e-5)
        np.testing.assert_allclose(np.array(proprio), np.array(ref["proprio"]), atol=1e-5)
        np.testing.assert_allclose(rewards, ref["reward"], atol=1e-5)
        assert costs == ref["cost"]
        env.close()


@pytest.mark.parametrize("kwargs, words", [
    ({"distractors": -1}, "from 0 to 3"),
    ({"distractors": 4}, "from 0 to 3"),
    ({"distractors": 1.5}, "from 0 to 3"),
    ({"distractors": True}, "from 0 to 3"),
    ({"distractors": 1, "categories": ["cube"]}, "from 0 to 0"),
    ({"distractors": 1, "distractor_split": "test"}, "Unknown distractor_split"),
])
def test_bad_distractor_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        gym.make("SafeAdapt/Lift-v0", obs_mode="state", **kwargs)


@pytest.mark.parametrize("options, words", [
    ({"category": "can", "distractor_categories": ["can", "milk", "ball"]}, "cannot also be a distractor"),
    ({"category": "can", "distractor_categories": ["milk"]}, "exactly 3"),
    ({"category": "can", "distractor_categories": ["milk", "milk", "ball"]}, "3 different categories"),
    ({"category": "can", "distractor_categories": ["milk", "lemon", "ball"]}, "3 different categories"),
    ({"colour": "red"}, "Unknown reset options"),
])
def test_bad_reset_options(options, words):
    env = gym.make("SafeAdapt/LiftAmong-v0", obs_mode="state")
    with pytest.raises(ValueError, match=words):
        env.reset(seed=0, options=options)
    obs, info = env.reset(seed=0, options={"category": "can", "distractor_categories": ["milk", "cube", "ball"]})
    assert info["distractor_categories"] == ["milk", "cube", "ball"]
    env.close()


class _PicksWrong(gym.Env):
    """Two-step episodes; odd episodes pick a distractor up at their last step."""

    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def __init__(self, distractors: int):
        self.distractors, self.episode, self.t = distractors, -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        wrong = bool(self.distractors) and self.episode % 2 == 1 and self.t == 2
        return np.zeros(1, np.float32), 0.0, self.t == 2, False, {"cost": 0.0, "wrong_object": wrong}


@pytest.mark.parametrize("distractors, rate", [(3, 0.5), (0, None)])
def test_monitor_reports_the_wrong_object_rate(distractors, rate):
    from safeadapt_bench.harness.metrics import pooled
    from safeadapt_bench.harness.monitor import SafetyMonitor, summarize

    monitor = SafetyMonitor(_PicksWrong(distractors))
    for ep in range(4):
        monitor.reset(seed=ep)
        monitor.step(np.zeros(1))
        monitor.step(np.zeros(1))
    summary = summarize(monitor.episodes, monitor.stats, None)
    assert summary["wrong_object_rate"] == rate
    other = {**summary, "episodes": 12, "wrong_object_rate": 0.0 if rate is not None else None}
    assert pooled(summary, other)["wrong_object_rate"] == (None if rate is None else 2 / 16)


def test_probe_scenes_with_distractors_round_trip_and_probe_grounding(tmp_path):
    from safeadapt_bench.backbones import load_backbone
    from safeadapt_bench.backbones.probe import probe_accuracy
    from safeadapt_bench.backbones.scenes import PROBE_SEED_OFFSET, SceneSet, render_scenes

    cache = tmp_path / "among.npz"
    scenes = render_scenes(6, PROBE_SEED_OFFSET, camera_size=32, progress=False, cache=cache, distractors=2)
    assert all(len(d) == 2 and c not in d for c, d in zip(scenes.categories, scenes.distractor_categories))
    loaded = SceneSet.load(cache)
    assert loaded.distractor_categories == scenes.distractor_categories
    plain = render_scenes(6, PROBE_SEED_OFFSET, camera_size=32, progress=False, cache=cache)  # not the other set
    assert plain.distractor_categories is None and SceneSet.load(cache).distractor_categories is None
    backbone = load_backbone()
    res = probe_accuracy(backbone, scenes)
    assert 0 <= res["top1_grounding"] <= 1 and "top1_grounding" not in probe_accuracy(backbone, plain)
