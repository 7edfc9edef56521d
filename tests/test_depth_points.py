"""3-D object points from depth under the object head's attention (``safeadapt_bench.depth_points``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import safeadapt_bench.envs  # noqa: F401 - registers the ids
from safeadapt_bench.depth_points import (
    PANDA_CALIBRATION,
    attended_point,
    camera_points,
    parse_calibration,
    patch_clouds,
    quat_xyzw_to_matrix,
)
from safeadapt_bench.envs.wrappers import InstructionTokens
from safeadapt_bench.experts.policies import GRASP, make_policy
from safeadapt_bench.features import OBJECT_POINT_DIM, BackboneExtractor

KEYS = {"front": "depth", "wrist": "wrist_depth"}


@pytest.fixture(scope="module")
def stepped():
    """A Panda Lift env with both cameras (32 px), a few random steps after a seeded reset."""
    env = InstructionTokens(gym.make("SafeAdapt/Lift-v0", camera_size=32, cameras=("front", "wrist")))
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(8):
        obs, *_ = env.step(rng.uniform(-0.5, 0.5, env.action_space.shape).astype(np.float32))
    yield env, obs
    env.close()


def test_panda_calibration_is_the_envs_own(stepped):
    env, _ = stepped
    assert env.unwrapped.camera_calibration() == PANDA_CALIBRATION


def _check_back_projection(env, obs) -> None:
    """Our camera_points through env.camera_calibration() == robosuite's own camera model, per pixel."""
    from robosuite.utils.camera_utils import get_camera_transform_matrix

    from safeadapt_bench.envs.scene import CAMERAS

    cams, _ = parse_calibration(env.unwrapped.camera_calibration())
    p = torch.as_tensor(obs["proprio"][None]).double()
    s = obs["depth"].shape[0]
    uv = np.stack(np.meshgrid(np.arange(s) + 0.5, np.arange(s) + 0.5, indexing="xy"), -1)
    for cam, key in KEYS.items():
        d = obs[key][..., 0].astype(np.float64)
        m = get_camera_transform_matrix(env.unwrapped.scene.sim, CAMERAS[cam], s, s)
        hom = np.concatenate([uv * d[..., None], d[..., None], np.ones((s, s, 1))], -1).reshape(-1, 4)
        expected = (np.linalg.inv(m) @ hom.T).T[:, :3].reshape(s, s, 3)
        ours = camera_points(torch.as_tensor(d)[None, None], cams[cam], p[:, :3], quat_xyzw_to_matrix(p[:, 3:7]))
        assert np.abs(ours[0].numpy() - expected).max() < 1e-5, cam


def test_back_projection_matches_robosuites_camera_model(stepped):
    _check_back_projection(*stepped)


def test_attended_point_is_the_mean_of_the_attended_pixels_on_the_table():
    grid, s, table_z = 2, 4, 0.8
    depth = torch.ones(1, 1, s, s)
    cam = parse_calibration(PANDA_CALIBRATION)[0]["front"]
    clouds = torch.zeros(1, grid * grid, 5)
    clouds[0, 1] = torch.tensor([0.5, 0.5 * 0.1, 0.5 * 0.2, 0.5 * 0.9, 0.12])  # half the patch at (0.1, 0.2, 0.9)
    clouds[0, 2] = torch.tensor([1.0, 0.3, 0.3, 0.85, 0.05])  # all of it at (0.3, 0.3, 0.85)
    only_one = attended_point(clouds, torch.tensor([[0.0, 1.0, 0.0, 0.0]]), table_z)
    assert torch.allclose(only_one, torch.tensor([[0.1, 0.2, 0.1, 0.5, 0.12]]))
    both = attended_point(clouds, torch.tensor([[0.0, 0.5, 0.5, 0.0]]), table_z)  # squared weights 1/2 each
    assert torch.allclose(both[0, :2], torch.tensor([(0.05 + 0.3) / 1.5, (0.1 + 0.3) / 1.5]))
    assert torch.allclose(both[0, 4], torch.tensor((0.12 + 0.05) / 2))  # the attended patches' tops
    nothing = attended_point(clouds, torch.tensor([[1.0, 0.0, 0.0, 0.0]]), table_z)  # no pixel on the table
    assert torch.equal(nothing, torch.zeros(1, 5))
    assert patch_clouds(depth, cam, table_z, grid).shape == (1, grid * grid, 5)


def _batch(obs: dict) -> dict:
    """One env observation as the extractor's batch of one (images channels-first)."""
    o = {k: torch.as_tensor(v)[None] for k, v in obs.items()}
    for k in ("rgb", "depth", "wrist_rgb", "wrist_depth"):
        o[k] = o[k].permute(0, 3, 1, 2).float()
    return o


def test_extractor_places_the_object_within_centimetres(stepped):
    env, obs = stepped
    ext = BackboneExtractor(env.observation_space, pool="none", object_points=True, instruction=False,
                            camera_calibration=env.unwrapped.camera_calibration())
    o = _batch(obs)
    with torch.no_grad():
        f = ext(o)[0]
    truth = env.unwrapped.scene.sim.data.body_xpos[env.unwrapped.scene.active_body_id]
    front = f[:3].numpy() / 10  # the first camera's point, decimetres above the table -> metres
    assert np.linalg.norm(front[:2] - truth[:2]) < 0.03
    assert 0 < front[2] < 0.15
    assert torch.allclose(f[3:6], f[:3] - 10 * (o["proprio"][0, :3] - torch.tensor([0, 0, 0.8])), atol=1e-5)
    category = env.unwrapped.category
    top = truth[2] - 0.8 + GRASP[category].top  # the object's collision top above the table, m
    assert abs(f[7].item() / 10 - top) < 0.015, (category, f[7].item() / 10, top)
    assert torch.allclose(f[8], f[7] - 10 * (o["proprio"][0, 2] - 0.8), atol=1e-5)


def test_point_noise_perturbs_object_points_only_while_training(stepped):
    env, obs = stepped
    ext = BackboneExtractor(env.observation_space, pool="none", object_points=True, instruction=False,
                            point_noise=0.01, camera_calibration=env.unwrapped.camera_calibration())
    o = _batch(obs)
    with torch.no_grad():
        clean = ext.eval()(o)[0]
        assert torch.equal(clean, ext(o)[0])  # evaluation: no noise
        torch.manual_seed(0)
        noisy = ext.train()(o)[0]
    moved = (noisy - clean).abs() > 1e-6
    dim = OBJECT_POINT_DIM
    for cam in range(2):  # per camera: point, point - eef, confidence, top, top - eef
        assert moved[cam * dim:cam * dim + 6].all() and moved[cam * dim + 7:cam * dim + 9].all()
        assert not moved[cam * dim + 6]  # the confidence is not a length
    assert not moved[2 * dim:].any()  # proprio untouched
    with pytest.raises(ValueError, match="point_noise"):
        BackboneExtractor(env.observation_space, pool="none", object_points=True, point_noise=-0.01)


def test_point_gate_keeps_the_lower_of_two_points_that_disagree(stepped):
    env, obs = stepped
    kw = dict(pool="none", object_points=True, instruction=False, camera_calibration=env.unwrapped.camera_calibration())
    o, dim = _batch(obs), OBJECT_POINT_DIM
    with torch.no_grad():
        free = BackboneExtractor(env.observation_space, **kw)(o)[0]
        wide = BackboneExtractor(env.observation_space, point_gate=100.0, **kw)(o)[0]
        tight = BackboneExtractor(env.observation_space, point_gate=1e-6, **kw)(o)[0]
    assert torch.equal(wide, free)  # every point within 100 m: nothing replaced
    assert not torch.allclose(free[dim:2 * dim], free[:dim])  # the two cameras' points differ here
    lower = free[:dim] if free[2] < free[dim + 2] else free[dim:2 * dim]  # 10 * height above the table
    assert torch.equal(tight[:dim], lower) and torch.equal(tight[dim:2 * dim], lower)
    assert torch.equal(tight[2 * dim:], free[2 * dim:])
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="point_gate"):
            BackboneExtractor(env.observation_space, point_gate=bad, **kw)


def test_point_gate_keeps_the_ur5e_wrist_camera_off_its_own_fingers():
    """The case the gate is for: on the UR5e at this reset the milk carton sits at the wrist view's edge and
    the wrist camera's point lands on the Robotiq fingers, 10+ cm above and beside the carton; gated, both
    cameras read the front's point, the lower one."""
    env = InstructionTokens(gym.make("SafeAdapt/Lift-v0", camera_size=64, cameras=("front", "wrist"), robot="UR5e",
                                     obs_mode="rgbd"))
    obs, _ = env.reset(seed=5001, options={"category": "milk"})
    true = env.unwrapped.scene.sim.data.body_xpos[env.unwrapped.scene.active_body_id] - np.array([0, 0, 0.8])
    kw = dict(pool="none", object_points=True, instruction=False, camera_calibration=env.unwrapped.camera_calibration())
    with torch.no_grad():
        errors = {}
        for gate in (None, 0.1):
            f = BackboneExtractor(env.observation_space, point_gate=gate, **kw)(_batch(obs))[0].numpy()
            errors[gate] = [np.linalg.norm(f[c * OBJECT_POINT_DIM:c * OBJECT_POINT_DIM + 2] / 10 - true[:2])
                            for c in range(2)]  # horizontal error per camera, m
    env.close()
    assert errors[None][0] < 0.04 < 0.1 < errors[None][1], errors  # front on the carton, wrist far off
    assert errors[0.1][1] == errors[0.1][0] == errors[None][0]


def test_the_locator_can_read_the_backbone_without_its_adapters(stepped):
    """``locate_with_adapters=False``: however the adapters have moved, the object points are the frozen
    backbone's (the tokens the object head was fitted on); with ``True`` they move with the adapters."""
    from safeadapt_bench.adapters import AdapterConfig

    env, obs = stepped
    kw = dict(pool="none", object_points=True, instruction=False, camera_calibration=env.unwrapped.camera_calibration())
    o = _batch(obs)
    with torch.no_grad():
        frozen = BackboneExtractor(env.observation_space, **kw)(o)[0]
        points = {}
        for own in (True, False):
            ext = BackboneExtractor(env.observation_space, adapter=AdapterConfig(kind="lora", rank=4),
                                    locate_with_adapters=own, **kw)
            torch.manual_seed(0)
            for p in ext.backbone.parameters():
                if p.requires_grad:  # adapters "trained" far from their initial no-op
                    p.add_(0.5 * torch.randn_like(p))
            points[own] = ext(o)[0]
    assert torch.allclose(points[False], frozen, atol=1e-5)
    assert not torch.allclose(points[True], frozen, atol=1e-3)


def test_bad_object_point_settings_are_clear_errors(stepped):
    env, _ = stepped
    space = env.observation_space
    with pytest.raises(ValueError, match="no entry for"):
        front_only = {"table_z": 0.8, "cameras": {"front": PANDA_CALIBRATION["cameras"]["front"]}}
        BackboneExtractor(space, pool="none", object_points=True, camera_calibration=front_only)
    with pytest.raises(ValueError, match="camera calibration is"):
        BackboneExtractor(space, pool="none", object_points=True, camera_calibration={"cameras": {}})
    no_depth = gym.spaces.Dict({k: v for k, v in space.spaces.items() if "depth" not in k})
    with pytest.raises(ValueError, match="depth and 'proprio'"):
        BackboneExtractor(no_depth, pool="none", object_points=True)
    with pytest.raises(ValueError, match="end-effector pose"):
        camera_points(torch.ones(1, 1, 4, 4), parse_calibration(PANDA_CALIBRATION)[0]["wrist"])
    with pytest.raises(ValueError, match="frame must be"):
        parse_calibration({"table_z": 0.8, "cameras": {"x": {"fovy": 50, "frame": "base", "pos": [0, 0, 0],
                                                              "rot": [1, 0, 0, 0, 1, 0, 0, 0, 1]}}})


def test_agent_takes_the_calibration_of_the_robot_it_acts_on():
    from safeadapt_bench.agents import Budget
    from safeadapt_bench.agents.registry import resolve_agent

    raw = gym.make("SafeAdapt/Lift-v0", camera_size=32, cameras=("front", "wrist"), robot="UR5e", obs_mode="rgbd+state")
    ur5e = InstructionTokens(raw)  # the extractor's view; the agent tokenizes the instruction itself
    try:
        own = parse_calibration(ur5e.unwrapped.camera_calibration())[0]
        panda = parse_calibration(PANDA_CALIBRATION)[0]
        assert own["wrist"] != panda["wrist"]  # its wrist camera is 4.8 cm further out
        agent = resolve_agent("adapter")(raw.observation_space, raw.action_space, adapter=None, pool="none",
                                         object_points=True, instruction=False, net_arch=(8,), learning_starts=100)
        ext = agent.model.actor.features_extractor
        assert ext.calibration["cameras"]["wrist"] == panda["wrist"]  # built for the Panda (the logs' robot)
        obs, _ = ur5e.reset(seed=0)
        expert = make_policy("expert", ur5e, seed=0)
        for _ in range(12):  # the expert's approach: the object in the wrist camera's view
            obs, *_ = ur5e.step(expert(obs))
        _check_back_projection(ur5e, obs)  # the UR5e's own calibration is right, wrist included
        with torch.no_grad():
            panda_points = ext(_batch(obs))[0]
            agent.deploy_on(ur5e)
            assert ext.calibration["cameras"] == own
            ur5e_points = ext(_batch(obs))[0]
            with ext.calibrated({"cameras": panda, "table_z": 0.8}):  # logged frames keep their robot's
                assert torch.equal(ext(_batch(obs))[0], panda_points)
        assert ext.calibration["cameras"] == own
        wrist = slice(OBJECT_POINT_DIM, OBJECT_POINT_DIM + 3)
        assert torch.equal(ur5e_points[:OBJECT_POINT_DIM], panda_points[:OBJECT_POINT_DIM])  # same front camera
        truth = ur5e.unwrapped.scene.sim.data.body_xpos[ur5e.unwrapped.scene.active_body_id]
        error = {name: np.linalg.norm(p[wrist][:2].numpy() / 10 - truth[:2])
                 for name, p in (("panda", panda_points), ("ur5e", ur5e_points))}
        assert error["ur5e"] < 0.03 < error["panda"] or error["ur5e"] < error["panda"] - 0.02, error
        assert agent.adapt(raw, Budget(env_steps=2))["env_steps"] >= 2
        with pytest.raises(ValueError, match="no entry for"):
            ext.set_calibration({"table_z": 0.8, "cameras": {"front": PANDA_CALIBRATION["cameras"]["front"]}})
    finally:
        ur5e.close()


@pytest.mark.parametrize("name", ["safe-adapter", "full-finetune", "adapter", "safe-rl"])
def test_every_reference_agent_pretrains_and_adapts_on_object_points(name, tmp_path, monkeypatch):
    """The representation of issue 10's bar on each reference agent: the frozen path is cached, and an
    adapter's gradients reach it through the object head's attention."""
    from safeadapt_bench.agents import Budget
    from safeadapt_bench.agents.registry import resolve_agent
    from safeadapt_bench.data import collect, load

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.setenv("SAFEADAPT_CACHE", str(tmp_path / "cache"))
    env = gym.make("SafeAdapt/Lift-v0", camera_size=16, max_episode_steps=8, cameras=("front", "wrist"))
    try:
        logs = load(collect("SafeAdapt/Lift-v0", 2, "expert", seed=0, progress=False, camera_size=16,
                            max_episode_steps=8, cameras=("front", "wrist")).dataset_id)
        agent = resolve_agent(name)(env.observation_space, env.action_space, seed=0, pool="none", object_points=True,
                                    instruction=False, net_arch=(16,), pretrain_batch_size=8, window=2,
                                    learning_starts=4)
        stats = agent.pretrain(logs, Budget(updates=2))
        assert stats["updates"] == 2 and np.isfinite(stats["bc_nll"])
        assert stats["frames_cached"] == (name != "full-finetune")
        if name == "adapter":  # the adapted block moves the object head's attention, so it gets gradients
            ext = agent.model.actor.features_extractor
            tokens, obs = agent.logged_frames(logs).select(torch.arange(4))
            ext.features_from_tokens(tokens, obs).pow(2).sum().backward()
            grads = [p.grad for p in agent.backbone().parameters() if p.requires_grad]
            assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
        assert agent.adapt(env, Budget(env_steps=6))["env_steps"] >= 6
        assert env.action_space.contains(agent.act(env.reset(seed=1)[0]))
    finally:
        env.close()
