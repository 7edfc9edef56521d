"""Pixel policies (issue 10): the wrist camera, spatial pooling heads, cached frozen features, behaviour cloning."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import safeadapt_bench.envs  # noqa: F401 - registers the ids
from safeadapt_bench.agents import Budget
from safeadapt_bench.agents.registry import resolve_agent
from safeadapt_bench.baselines.common.frames import logged_frames
from safeadapt_bench.features import BackboneExtractor
from safeadapt_bench.pooling import AttentionPool, SpatialSoftmax, make_pool

ENV = "SafeAdapt/Lift-v0"
STEPS = 12
CAMERAS = ("front", "wrist")
TINY = dict(pretrain_batch_size=8, window=2, net_arch=(32,), keypoints=8)


@pytest.fixture(scope="module", autouse=True)
def _torch_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Two short expert episodes with both cameras (16 px) in a temporary data directory."""
    from safeadapt_bench.data import collect, load

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        summary = collect(ENV, 3, "expert", seed=0, progress=False, camera_size=16, max_episode_steps=STEPS,
                          cameras=CAMERAS)
        yield load(summary.dataset_id)


@pytest.fixture(scope="module")
def env():
    e = gym.make(ENV, camera_size=16, max_episode_steps=STEPS, cameras=CAMERAS)
    yield e
    e.close()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFEADAPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ---------------------------------------------------------------- the wrist camera
def test_wrist_camera_observations_are_seeded_and_check_env_clean():
    env = gym.make(ENV, camera_size=16, cameras=("front", "wrist"))
    other = gym.make(ENV, camera_size=16, cameras=("front", "wrist"))
    try:
        check_env(env.unwrapped, skip_render_check=True)
        assert env.observation_space["wrist_rgb"].shape == (16, 16, 3)
        assert env.observation_space["wrist_depth"].shape == (16, 16, 1)
        a, _ = env.reset(seed=3)
        b, _ = other.reset(seed=3)
        action = np.array([0.3, -0.2, -0.5, 0, 0, 0.2, -1], dtype=np.float32)
        for _ in range(3):
            a, *_ = env.step(action)
            b, *_ = other.step(action)
        np.testing.assert_array_equal(a["wrist_rgb"], b["wrist_rgb"])
        np.testing.assert_array_equal(a["wrist_depth"], b["wrist_depth"])
        # the wrist view is not the front view, and it moves with the hand: close range depth
        assert not np.array_equal(a["wrist_rgb"], a["rgb"])
        assert float(a["wrist_depth"].min()) < float(a["depth"].min())
        c, _ = other.reset(seed=4)
        assert not np.array_equal(c["wrist_rgb"], b["wrist_rgb"])
    finally:
        env.close()
        other.close()


def test_front_only_keeps_the_old_keys():
    env = gym.make(ENV, camera_size=16, cameras=("front",))
    try:
        obs, _ = env.reset(seed=0)
        assert "rgb" in obs and "depth" in obs and "wrist_rgb" not in obs
    finally:
        env.close()


@pytest.mark.parametrize("cameras", [("front", "eye"), (), ("wrist", "wrist")])
def test_unknown_or_repeated_camera_is_a_clear_error(cameras):
    with pytest.raises(ValueError, match="cameras must be distinct names from"):
        gym.make(ENV, camera_size=16, cameras=cameras)


# ---------------------------------------------------------------- pooling heads
def test_spatial_softmax_finds_where_tokens_fire():
    pool = SpatialSoftmax(dim=4, grid=8, keypoints=1)
    with torch.no_grad():
        pool.maps.weight.zero_()
        pool.maps.weight[0, 0] = 50.0
        pool.maps.bias.zero_()
    tokens = torch.zeros(2, 64, 4)
    tokens[0, 7, 0] = 1.0  # row 0, column 7: top right
    tokens[1, 56, 0] = 1.0  # row 7, column 0: bottom left
    xy = pool(tokens)
    np.testing.assert_allclose(xy.detach().numpy(), [[1.0, -1.0], [-1.0, 1.0]], atol=1e-3)


def test_attention_pool_shape_and_bad_names():
    assert AttentionPool(dim=8, grid=2, queries=3, heads=2)(torch.randn(5, 4, 8)).shape == (5, 24)
    with pytest.raises(ValueError, match="Unknown pool 'softmax'"):
        make_pool("softmax", 8, 2)
    with pytest.raises(ValueError, match="unknown pool"):
        resolve_agent("adapter")(None, None, pool="max")


# ---------------------------------------------------------------- gradients and caching
def test_gradients_reach_only_trainable_parts(env, logs, cache):
    agent = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, **TINY)
    ext = agent.model.actor.features_extractor
    frames = agent.logged_frames(logs)
    tokens, obs = frames.select(torch.arange(4))
    agent.model.actor.zero_grad()
    feats = ext.features_from_tokens(tokens, obs)
    torch.tanh(agent.model.actor.mu(agent.model.actor.latent_pi(feats))).sum().backward()
    trained = 0.0
    for name, p in agent.backbone().named_parameters():
        if p.requires_grad:
            assert "lora" in name and ".3." in name, name  # only the top block's adapter trains in the backbone
            assert p.grad is not None, name  # (lora_A's gradient is 0 while lora_B is still at its zero init)
            trained += float(p.grad.abs().sum())
        else:
            assert p.grad is None, name
    assert trained > 0
    for name, p in ext.pools.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert ext.frozen_start() == len(agent.backbone().blocks) - 1


@pytest.mark.parametrize("agent_name,kwargs", [("adapter", {}), ("adapter", {"adapter": None}),
                                               ("adapter", {"adapter": None, "keypoint_depth": True}),
                                               ("adapter", {"adapter": None, "pool": "none", "object_points": True}),
                                               ("full-finetune", {})])
def test_cached_features_equal_recomputed(agent_name, kwargs, env, logs, cache):
    agent = resolve_agent(agent_name)(env.observation_space, env.action_space, seed=0, **TINY, **kwargs)
    ext = agent.model.actor.features_extractor
    first = agent.logged_frames(logs)
    again = agent.logged_frames(logs)
    if ext.frozen_start() is None:  # full fine-tuning: nothing frozen, nothing cached
        assert not first.tokens and not first.fingerprint
        return
    assert not first.from_cache and again.from_cache
    for cam in ext.cameras:
        assert torch.equal(first.tokens[cam], again.tokens[cam])
    # the cached path gives the features of the full forward pass on the same frames, bit for bit
    raw = logged_frames(logs, ext, list(agent.model.observation_space.spaces), agent._tok.tokens, use_cache=False)
    idx = torch.arange(len(first))
    with torch.no_grad():
        direct = ext.forward({**first.obs, **_images(logs, agent)})
        cached = ext.features_from_tokens(*again.select(idx))
    bad = (direct != cached).any(0).nonzero().flatten()
    assert torch.equal(direct, cached), (bad, (direct - cached).abs().max())
    assert torch.equal(raw.tokens["front"], again.tokens["front"])


def test_colour_copies_are_recoloured_frames_through_the_frozen_part(env, logs, cache):
    from safeadapt_bench.baselines.common.frames import recoloured

    agent = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, adapter=None,
                                     colour_copies=2, **TINY)
    ext = agent.model.actor.features_extractor
    frames = agent.logged_frames(logs, augment=True)
    assert set(frames.variants) == set(ext.cameras)
    assert frames.variants["front"].shape == (2, *frames.tokens["front"].shape)
    images = _images(logs, agent)
    copy1 = recoloured(images, frames.episode, 1)
    assert torch.equal(copy1["depth"], images["depth"]) and not torch.equal(copy1["rgb"], images["rgb"])
    grey = (images["rgb"][:, 0] == images["rgb"][:, 1]) & (images["rgb"][:, 1] == images["rgb"][:, 2])
    assert torch.equal(copy1["rgb"][:, 0][grey], images["rgb"][:, 0][grey])  # a hue shift keeps greys
    with torch.no_grad():
        direct = ext.frozen_tokens({k: copy1[k] for k in images})
    assert torch.equal(direct["wrist"], frames.variants["wrist"][1])  # copy j = the frozen pass of its images
    idx = torch.arange(len(frames))
    picked, _ = frames.select(idx, torch.full((len(idx),), 2))
    assert torch.equal(picked["front"], frames.variants["front"][1])
    again = agent.logged_frames(logs, augment=True)  # read back from the cache, equal
    assert torch.equal(again.variants["front"], frames.variants["front"])
    assert agent.logged_frames(logs).variants is None  # validation frames: originals only
    stats = agent.pretrain(logs, Budget(updates=3))
    assert stats["updates"] == 3 and np.isfinite(stats["bc_nll"])
    with pytest.raises(ValueError, match="colour_copies"):
        resolve_agent("adapter")(None, None, colour_copies=-1)


def _images(logs, agent) -> dict[str, torch.Tensor]:
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("rgb", "depth", "wrist_rgb", "wrist_depth")}
    for ep in logs.episodes():
        for k in out:
            out[k].append(getattr(ep, k)[: len(ep)])
    return {k: torch.from_numpy(np.concatenate(v)).permute(0, 3, 1, 2).contiguous() for k, v in out.items()}


def test_cache_from_another_dataset_or_backbone_is_recomputed(env, logs, cache):
    agent = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, **TINY, adapter=None)
    first = agent.logged_frames(logs)
    assert not first.from_cache and agent.logged_frames(logs).from_cache
    fewer = agent.logged_frames(logs.subset(logs.episode_indices[:1]))  # another dataset view
    assert not fewer.from_cache and fewer.fingerprint != first.fingerprint
    with torch.no_grad():  # another backbone: one frozen weight changes
        agent.backbone().clip.visual.ln_pre.weight.mul_(1.01)
    changed = agent.logged_frames(logs)
    assert not changed.from_cache and changed.fingerprint != first.fingerprint
    assert not torch.equal(changed.tokens["front"], first.tokens["front"])
    # a corrupt cache file is recomputed too
    path = cache / "frames" / f"{changed.fingerprint}.pt"
    path.write_bytes(b"not a torch file")
    again = agent.logged_frames(logs)
    assert not again.from_cache and torch.equal(again.tokens["front"], changed.tokens["front"])


# ---------------------------------------------------------------- behaviour cloning
def test_behaviour_cloning_loss_falls_and_is_validated(env, logs, cache):
    agent = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, **TINY, adapter=None,
                                     pretrain_updates=60, pretrain_lr=3e-3)
    frames = agent.logged_frames(logs)
    from safeadapt_bench.baselines.common.pretrain import validation_bc

    before = validation_bc(agent.model, frames)
    stats = agent.pretrain(logs, Budget())
    after = validation_bc(agent.model, frames)
    assert stats["updates"] == 60 and stats["val_frames"] > 0 and stats["val_bc"] is not None
    assert after < 0.5 * before
    # the extractor normalises proprio with the logs' statistics
    ext = agent.model.actor.features_extractor
    assert ext.extra_std.min() > 0 and not torch.allclose(ext.extra_mean, torch.zeros_like(ext.extra_mean))
    action = agent.act(env.reset(seed=0)[0])
    assert action.shape == (7,) and np.all(np.abs(action) <= 1)
    # stopped by the clock before the first scheduled validation: validated where it stopped
    short = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, **TINY, adapter=None,
                                     pretrain_updates=3000)
    stats = short.pretrain(logs, Budget(wall_seconds=0.05))  # ~30 of the first 250 updates here
    assert 0 < stats["updates"] < 250 and stats["val_curve"]["updates"] == [stats["updates"]]
    assert stats["val_bc"] is not None


def test_features_without_the_pooled_embedding(env, logs, cache):
    """``pool_embedding=False``: each camera's feature is the head's output alone (keypoints, then
    proprio), the same numbers as the head part of the default features; InfoNCE still aligns the
    front camera's pooled embedding, which the extractor returns beside the features."""
    both = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, **TINY)
    heads = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, pool_embedding=False, **TINY)
    ext_b, ext_h = both.model.actor.features_extractor, heads.model.actor.features_extractor
    embed, kp = ext_b.backbone.embed_dim, 2 * TINY["keypoints"]
    assert ext_b.features_dim - ext_h.features_dim == embed * len(CAMERAS)
    ext_h.pools.load_state_dict(ext_b.pools.state_dict())
    frames = both.logged_frames(logs)
    idx = torch.arange(6)
    with torch.no_grad():
        fb = ext_b.features_from_tokens(*frames.select(idx))
        fh, img = ext_h.features_from_tokens(*frames.select(idx), with_embedding=True)
    assert torch.equal(fh[:, :kp], fb[:, :kp])  # front keypoints
    assert torch.equal(fh[:, kp:2 * kp], fb[:, kp + embed:2 * kp + embed])  # wrist keypoints
    assert torch.equal(img, fb[:, kp:kp + embed])  # the front camera's pooled embedding, outside the features
    stats = heads.pretrain(logs, Budget(updates=3))
    assert stats["updates"] == 3 and stats["infonce"] > 0


def test_keypoint_features_read_what_is_at_each_keypoint():
    """``features=F``: each keypoint also averages F learned token projections under its softmax."""
    pool = SpatialSoftmax(dim=4, grid=8, keypoints=1, features=1)
    with torch.no_grad():
        pool.maps.weight.zero_()
        pool.maps.weight[0, 0] = 50.0
        pool.maps.bias.zero_()
        pool.values.weight.zero_()
        pool.values.weight[0, 1] = 1.0  # the feature reads token channel 1
        pool.values.bias.zero_()
    tokens = torch.zeros(2, 64, 4)
    tokens[:, 7, 0] = 1.0  # the keypoint sits on patch 7 ...
    tokens[0, 7, 1], tokens[1, 7, 1] = 0.25, -0.5  # ... whose channel 1 differs between the two images
    out = pool(tokens)
    assert pool.out_dim == 3 and out.shape == (2, 3)
    np.testing.assert_allclose(out[:, 2].detach().numpy(), [0.25, -0.5], atol=1e-3)
    with pytest.raises(ValueError, match="features >= 0"):
        SpatialSoftmax(dim=4, grid=8, features=-1)


def test_depth_keypoints_read_the_depth_where_each_keypoint_sits(env):
    """``keypoint_depth``: each keypoint adds the depth per patch averaged under its softmax; the
    extractor takes that depth from the camera's depth image, not from its colours."""
    pool = SpatialSoftmax(dim=4, grid=8, keypoints=1, depth=True)
    with torch.no_grad():
        pool.maps.weight.zero_()
        pool.maps.weight[0, 0] = 50.0
        pool.maps.bias.zero_()
    tokens = torch.zeros(2, 64, 4)
    tokens[:, 7, 0] = 1.0
    depth = torch.zeros(2, 64)
    depth[0, 7], depth[1, 7] = 0.3, -0.6
    out = pool(tokens, depth)
    assert pool.out_dim == 3
    np.testing.assert_allclose(out[:, 2].detach().numpy(), [0.3, -0.6], atol=1e-3)
    with pytest.raises(ValueError, match="depth per patch"):
        pool(tokens)
    with pytest.raises(ValueError, match="spatial_softmax"):
        make_pool("attention", 8, 2, keypoint_depth=True)
    agent = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, adapter=None,
                                     keypoint_depth=True, **TINY)
    ext = agent.model.actor.features_extractor
    obs, _ = env.reset(seed=0)
    batch = {k: torch.as_tensor(v)[None] for k, v in obs.items() if k != "instruction"}
    batch["instruction"] = torch.as_tensor(agent._tok.tokens(obs["instruction"]))[None]
    grid = ext.backbone.depth_grid(batch["depth"])
    assert grid.shape == (1, ext.backbone.grid_size ** 2)
    with torch.no_grad():
        base = ext(batch)
        nearer = ext({**batch, "depth": batch["depth"] * 0.8})
    per_cam = ext.pools["front"].out_dim
    depth_cols = slice(2 * TINY["keypoints"], 3 * TINY["keypoints"])  # front camera: x, y, then depth
    assert not torch.equal(base[:, :per_cam][:, depth_cols], nearer[:, :per_cam][:, depth_cols])
    no_depth = gym.spaces.Dict({k: v for k, v in env.observation_space.spaces.items() if "depth" not in k})
    with pytest.raises(ValueError, match="keypoint_depth=True needs each camera's depth"):
        BackboneExtractor(no_depth, backbone=ext.backbone, pool="spatial_softmax", keypoint_depth=True,
                          instruction=False)


def test_policy_without_the_instruction_ignores_it(env, logs, cache):
    """``instruction=False``: the features hold no instruction embedding and do not move with the text."""
    with_text = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, **TINY)
    without = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, instruction=False,
                                       keypoint_features=2, **TINY)
    ext_t, ext_n = with_text.model.actor.features_extractor, without.model.actor.features_extractor
    # 2 more numbers per keypoint and camera, one instruction embedding fewer
    assert ext_n.features_dim - ext_t.features_dim == 2 * TINY["keypoints"] * len(CAMERAS) - ext_t.backbone.embed_dim
    frames = without.logged_frames(logs)
    tokens, obs = frames.select(torch.arange(4))
    other = dict(obs, instruction=torch.roll(obs["instruction"], 1, dims=-1))
    with torch.no_grad():
        assert torch.equal(ext_n.features_from_tokens(tokens, obs), ext_n.features_from_tokens(tokens, other))
    stats = without.pretrain(logs, Budget(updates=3))
    assert stats["updates"] == 3


def test_offline_reward_critic_fits_the_logged_discounted_returns(env, logs, cache):
    from safeadapt_bench.baselines.common.frames import discounted_returns
    from safeadapt_bench.baselines.common.pretrain import critic_mc

    agent = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, **TINY, adapter=None,
                                     pretrain_updates=150, pretrain_lr=3e-3, critic_pretrain=True)
    frames = agent.logged_frames(logs)
    gamma = agent.model.gamma
    returns = discounted_returns(frames, gamma)
    # by hand: G_t = r_t + gamma G_{t+1} inside an episode, and the last step of an episode is its reward
    rewards, episode = frames.rewards.double(), frames.episode
    last = torch.cat([episode[1:] != episode[:-1], torch.tensor([True])])
    assert torch.allclose(returns[last].double(), rewards[last], atol=1e-5)
    inner = torch.nonzero(~last).squeeze(1)
    assert torch.allclose(returns[inner].double(), rewards[inner] + gamma * returns[inner + 1].double(), atol=1e-4)
    idx = torch.arange(len(frames))
    before = float(critic_mc(agent.model, frames, idx, returns).detach())
    stats = agent.pretrain(logs, Budget())
    after = float(critic_mc(agent.model, frames, idx, returns).detach())
    assert stats["q_mc"] > 0 and after < 0.2 * before
    # SAC's target critics start from the fitted ones
    x = torch.cat([frames.features(agent.model.actor.features_extractor, idx), frames.actions], 1).detach()
    for q, q_target in zip(agent.model.critic.q_networks, agent.model.critic_target.q_networks):
        assert torch.equal(q(x), q_target(x))
    # off by default: the critics are not touched
    plain = resolve_agent("adapter")(env.observation_space, env.action_space, seed=0, **TINY, adapter=None,
                                     pretrain_updates=20)
    w = [p.clone() for q in plain.model.critic.q_networks for p in q.parameters()]
    assert "q_mc" not in plain.pretrain(logs, Budget())
    assert all(torch.equal(a, b) for a, b in zip(w, (p for q in plain.model.critic.q_networks for p in q.parameters())))
