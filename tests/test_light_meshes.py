"""Lighter visual meshes (``envs/light_meshes.py``): the same physics, nearly the same pictures, fewer faces.

The trajectories recorded from robosuite's own loop (``tests/test_env_speed_physics.py``) are also
replayed with the default, lighter meshes, so that test covers Panda and UR5e as well.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from physics_reference import scripted_actions

import safeadapt_bench  # noqa: F401 - registers the ids
from safeadapt_bench.envs import light_meshes


def _pair(**kwargs):
    return [gym.make("SafeAdapt/Lift-v0", max_episode_steps=10**9, mesh_detail=d, **kwargs)
            for d in (1.0, light_meshes.FACE_FRACTION)]


def test_lighter_meshes_keep_the_physics_bit_for_bit_and_the_pictures_within_a_grey_level():
    full, light = _pair(cameras=("front", "wrist"), camera_size=32)
    try:
        for e in (full, light):
            e.reset(seed=4)
        rgb_diff = []
        for a in scripted_actions(4, 30):
            (of, _, _, _, inf_f), (ol, _, _, _, inf_l) = full.step(a), light.step(a)
            df, dl = full.unwrapped.scene.sim.data, light.unwrapped.scene.sim.data
            np.testing.assert_array_equal(df.qpos, dl.qpos)
            np.testing.assert_array_equal(df.qvel, dl.qvel)
            np.testing.assert_array_equal(of["proprio"], ol["proprio"])
            assert inf_f["cost"] == inf_l["cost"]
            rgb_diff.append(np.abs(of["rgb"].astype(float) - ol["rgb"]).mean())
            assert np.abs(of["wrist_depth"] - ol["wrist_depth"]).mean() < 0.01
        assert 0 < np.mean(rgb_diff) < 1.5  # drawn differently, but under about a grey level
    finally:
        full.close()
        light.close()


def test_only_purely_visual_meshes_lose_faces_and_the_build_is_deterministic():
    full, light = _pair(obs_mode="state")
    mf, ml = (e.unwrapped.scene.sim.model._model for e in (full, light))
    try:
        assert light_meshes.face_count(ml) < 0.4 * light_meshes.face_count(mf)
        for field in ("body_mass", "body_inertia", "body_ipos", "geom_contype", "geom_conaffinity", "jnt_range"):
            np.testing.assert_array_equal(getattr(mf, field), getattr(ml, field), err_msg=field)
        collide = (mf.geom_contype != 0) | (mf.geom_conaffinity != 0)
        for field in ("geom_size", "geom_pos", "geom_quat", "geom_friction"):
            np.testing.assert_array_equal(getattr(mf, field)[collide], getattr(ml, field)[collide], err_msg=field)
        is_mesh = mf.geom_type == mujoco.mjtGeom.mjGEOM_MESH
        colliding = {int(mf.geom_dataid[g]) for g in np.flatnonzero(is_mesh & collide)}
        assert colliding
        for mesh in colliding:  # every mesh a collision uses keeps all its faces
            assert mf.mesh_facenum[mesh] == ml.mesh_facenum[mesh]
        light_meshes._CACHE.clear()
        again = gym.make("SafeAdapt/Lift-v0", obs_mode="state").unwrapped.scene.sim.model._model
        np.testing.assert_array_equal(again.mesh_vert, ml.mesh_vert)
        np.testing.assert_array_equal(again.mesh_face, ml.mesh_face)
    finally:
        full.close()
        light.close()


@pytest.mark.parametrize("bad", [0, 1.5, -0.2, True, "low"])
def test_a_mesh_detail_outside_0_1_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="mesh_detail must be a fraction of faces in"):
        gym.make("SafeAdapt/Lift-v0", obs_mode="state", mesh_detail=bad)
