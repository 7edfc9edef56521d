"""Pretraining is seeded and reproducible; the probe works on real scenes and on adapted backbones."""

from __future__ import annotations

import numpy as np
import torch

from safeadapt_bench.adapters import AdapterConfig, adapters_disabled, add_adapter
from safeadapt_bench.backbones import PretrainConfig, load_backbone
from safeadapt_bench.backbones.captions import all_captions, probe_caption, vocabulary_texts
from safeadapt_bench.backbones.pretrain import pretrain, ship
from safeadapt_bench.backbones.probe import probe_accuracy
from safeadapt_bench.backbones.scenes import (
    CATEGORY_ORDER,
    PRETRAIN_SEED_OFFSET,
    PROBE_SEED_OFFSET,
    SceneSet,
    render_scenes,
)
from safeadapt_bench.envs.categories import CATEGORIES


def _synthetic_scenes(n: int = 20) -> SceneSet:
    rng = np.random.default_rng(0)
    return SceneSet(
        rgb=rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8),
        depth=rng.uniform(0.5, 2.0, (n, 64, 64, 1)).astype(np.float32),
        categories=[CATEGORY_ORDER[i % 10] for i in range(n)],
        positions=rng.uniform(-0.12, 0.12, (n, 3)).astype(np.float32),
        seeds=np.arange(n),
    )


def test_captions_cover_every_category_including_heldout():
    texts = " ".join(vocabulary_texts())
    for name, cat in CATEGORIES.items():
        assert probe_caption(name) in texts
        assert any(n in texts for n in cat.nouns)
    caps = all_captions("lemon", "left")
    assert any(p == "left" and "left" in t for t, p in caps) and any(p is None for _, p in caps)


def test_pretraining_is_seeded_and_reproducible(tmp_path):
    scenes = _synthetic_scenes()
    cfg = PretrainConfig(steps=3, batch_size=8, warmup=1, scenes=len(scenes))
    a, rec = pretrain(cfg, scenes=scenes, progress=False, log=lambda s: None)
    b, _ = pretrain(cfg, scenes=scenes, progress=False, log=lambda s: None)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert rec["config"]["steps"] == 3 and np.isfinite(rec["final_loss"])
    c, _ = pretrain(
        PretrainConfig(steps=3, batch_size=8, warmup=1, seed=1), scenes=scenes, progress=False, log=lambda s: None
    )
    assert not torch.equal(
        c.state_dict()["visual.proj"] if "visual.proj" in c.state_dict() else c.clip.visual.proj, a.clip.visual.proj
    )
    # the compact shipped form: float16, sparse token rows; the trained vocabulary's outputs survive
    path = ship(a, tmp_path / "tiny.safetensors", rec)
    shipped = load_backbone(pretrained=path)
    texts = [probe_caption(c) for c in CATEGORY_ORDER]
    with torch.no_grad():
        assert torch.allclose(shipped.encode_text(texts), a.encode_text(texts), atol=2e-2)


def test_probe_on_synthetic_scenes_and_adapted_backbone():
    torch.manual_seed(0)
    bb = load_backbone(pretrained=None)
    scenes = _synthetic_scenes()
    res = probe_accuracy(bb, scenes)
    assert set(res) >= {"top1", "top1_train", "top1_heldout", "top1_position", "chance", "n"}
    assert res["n"] == 20 and 0 <= res["top1"] <= 1
    add_adapter(bb, AdapterConfig("bottleneck"), "a")  # identity at start: the same accuracy
    assert probe_accuracy(bb, scenes) == res
    with adapters_disabled(bb):
        assert probe_accuracy(bb, scenes) == res


def test_default_backbone_retrieves_categories_of_fresh_scenes():
    scenes = render_scenes(20, PROBE_SEED_OFFSET + 5000, progress=False)  # unseen by pretraining
    assert sorted(set(scenes.categories)) == sorted(CATEGORY_ORDER)
    assert PROBE_SEED_OFFSET > PRETRAIN_SEED_OFFSET + PretrainConfig().scenes
    res = probe_accuracy(load_backbone(), scenes)
    assert res["top1"] >= 0.6, res  # chance is 0.1; the full 500-scene probe is in the README


def test_scene_cache_is_reused_and_a_corrupt_one_is_rendered_again(tmp_path):
    cache = tmp_path / "scenes.npz"
    first = render_scenes(3, PROBE_SEED_OFFSET, camera_size=16, progress=False, cache=cache)
    assert cache.is_file() and not list(tmp_path.glob("*.tmp"))
    stamp = cache.stat().st_mtime_ns
    again = render_scenes(3, PROBE_SEED_OFFSET, camera_size=16, progress=False, cache=cache)
    assert cache.stat().st_mtime_ns == stamp  # read, not rendered and written again
    np.testing.assert_array_equal(again.rgb, first.rgb)
    assert again.categories == first.categories
    cache.write_bytes(b"not an npz")
    healed = render_scenes(3, PROBE_SEED_OFFSET, camera_size=16, progress=False, cache=cache)
    np.testing.assert_array_equal(healed.rgb, first.rgb)
    assert SceneSet.load(cache).categories == first.categories
    # A different request is not served from a cache made for another one.
    other = render_scenes(3, PROBE_SEED_OFFSET + 3, camera_size=16, progress=False, cache=cache)
    assert not np.array_equal(other.seeds, first.seeds)
