"""The SB3 features extractor: shapes, instruction cache, adapter-only training, a tiny PPO run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs

from safeadapt_bench.adapters import AdapterConfig
from safeadapt_bench.backbones import load_backbone
from safeadapt_bench.features import BackboneExtractor

SPACE = spaces.Dict(
    {
        "rgb": spaces.Box(0, 255, (64, 64, 3), np.uint8),
        "depth": spaces.Box(0, 10, (64, 64, 1), np.float32),
        "proprio": spaces.Box(-100, 100, (30,), np.float32),
        "instruction": spaces.Box(0, 49407, (32,), np.int64),
    }
)


def _batch(bb, n=4):
    g = torch.Generator().manual_seed(0)
    tokens = bb.tokenize(["pick up the milk carton", "lift the red cube"] * (n // 2))
    tokens = torch.nn.functional.pad(tokens, (0, 32 - tokens.shape[1]))
    obs = {
        "rgb": torch.randint(0, 256, (n, 64, 64, 3), generator=g).float(),
        "depth": 0.5 + torch.rand(n, 64, 64, 1, generator=g),
        "proprio": torch.randn(n, 30, generator=g),
        "instruction": tokens.float(),  # SB3 hands Box entries over as float
    }
    return preprocess_obs(obs, SPACE)  # as SB3 does: rgb scaled to [0, 1]


def test_extractor_features_and_instruction_cache():
    torch.manual_seed(0)
    bb = load_backbone(pretrained=None)
    ext = BackboneExtractor(SPACE, backbone=bb)
    assert ext.features_dim == 2 * bb.embed_dim + 30
    obs = _batch(bb)
    feats = ext(obs)
    assert feats.shape == (4, ext.features_dim) and not feats.requires_grad
    assert ext.cache_misses == 2 and ext.cache_hits == 2
    feats2 = ext(obs)
    assert ext.cache_misses == 2 and ext.cache_hits == 6
    assert torch.equal(feats, feats2)
    with torch.no_grad():
        text = bb.encode_text(bb.tokenize(["pick up the milk carton", "lift the red cube"]))
        img = bb.encode_image(obs["rgb"], obs["depth"])
    assert torch.allclose(feats[:2, bb.embed_dim : 2 * bb.embed_dim], text, atol=1e-6)
    assert torch.allclose(feats[:, : bb.embed_dim], img, atol=1e-6)
    assert torch.equal(feats[:, 2 * bb.embed_dim :], obs["proprio"])


def test_eef_proprio_is_the_pose_and_gripper_whatever_the_arm():
    bb = load_backbone(pretrained=None)
    ext = BackboneExtractor(SPACE, backbone=bb, proprio="eef", instruction=False)
    assert ext.features_dim == bb.embed_dim + 11  # position 3, rotation 6, aperture and its rate 2
    obs = _batch(bb)
    q = torch.nn.functional.normalize(obs["proprio"][:, 3:7], dim=1)
    obs["proprio"][:, 3:7] = q
    flipped = {**obs, "proprio": torch.cat([obs["proprio"][:, :3], -q, obs["proprio"][:, 7:]], 1)}
    with torch.no_grad():
        feats = ext(obs)
        assert torch.equal(feats, ext(flipped))  # q and -q: one rotation (UR5e and Kinova3 report -q of the Panda's)
        joints = {**obs, "proprio": torch.cat([obs["proprio"][:, :9], torch.randn(4, 21)], 1)}
        assert torch.equal(feats, ext(joints))  # the arm's joints are not read
        extra = feats[:, bb.embed_dim:]
    assert torch.equal(extra[:, :3], obs["proprio"][:, :3]) and torch.equal(extra[:, 9:], obs["proprio"][:, 7:9])
    down = torch.tensor([[1.0, 0.0, 0.0, 0.0]])  # xyzw: 180 degrees about x, the gripper pointing down
    assert torch.allclose(ext.extra_inputs({"proprio": torch.cat([torch.zeros(1, 3), down, torch.zeros(1, 23)], 1)}),
                          torch.tensor([[0.0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 0]]))  # R = diag(1, -1, -1), 3x2
    with pytest.raises(ValueError, match="Unknown proprio 'joints'"):
        BackboneExtractor(SPACE, backbone=bb, proprio="joints")


def test_extractor_trains_only_the_adapter():
    torch.manual_seed(0)
    bb = load_backbone(pretrained=None)
    ext = BackboneExtractor(SPACE, backbone=bb, adapter=AdapterConfig("bottleneck", bottleneck_dim=8))
    ext(_batch(bb)).pow(2).sum().backward()
    with_grad = {n for n, p in ext.named_parameters() if p.grad is not None}
    assert with_grad and all(".adapters.policy." in n for n in with_grad)


def test_extractor_rejects_text_instructions():
    space = spaces.Dict({"rgb": SPACE["rgb"], "instruction": spaces.Text(64)})
    with pytest.raises(ValueError, match="InstructionTokens"):
        BackboneExtractor(space, backbone=load_backbone(pretrained=None))


def test_ppo_learns_through_the_extractor_on_the_env():
    import gymnasium as gym
    from stable_baselines3 import PPO

    import safeadapt_bench  # noqa: F401
    from safeadapt_bench.envs.wrappers import InstructionTokens

    env = InstructionTokens(gym.make("SafeAdapt/Lift-v0", obs_mode="rgbd", camera_size=64), context_length=32)
    kwargs = dict(
        features_extractor_class=BackboneExtractor,
        features_extractor_kwargs=dict(adapter=AdapterConfig("lora", rank=2, placement="top")),
        net_arch=[16],
    )
    model = PPO("MultiInputPolicy", env, n_steps=16, batch_size=8, n_epochs=1, policy_kwargs=kwargs, seed=0)
    ext = model.policy.features_extractor
    before = {n: p.detach().clone() for n, p in ext.named_parameters()}
    model.learn(16)
    changed = {n for n, p in ext.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".lora_" in n for n in changed)
    env.close()
