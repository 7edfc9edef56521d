"""The backbone's spatial objective (issue 10, item 5): view sets, keypoint targets, the depth encoding,
and a fine-tune that teaches the patch tokens where the object is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from safeadapt_bench.backbones import load_backbone
from safeadapt_bench.backbones.loader import DEPTH_ENCODINGS
from safeadapt_bench.backbones.spatial import SpatialConfig, _shift, keypoint_target, spatial_finetune
from safeadapt_bench.backbones.views import ViewSet, pixel_to_grid, render_views


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_pixel_to_grid_maps_patch_centres_to_the_softmax_coordinates():
    # 64 px, 8x8 grid: the first patch's centre (row 4, col 4) is (-1, -1); the last one's (60, 60) is (1, 1)
    np.testing.assert_allclose(pixel_to_grid(np.array([[4.0, 4.0], [60.0, 60.0], [4.0, 60.0]]), 64, 8),
                               [[-1, -1], [1, 1], [1, -1]], atol=1e-6)


def test_keypoint_target_peaks_at_the_point_and_sums_to_one():
    t = keypoint_target(torch.tensor([[1.0, -1.0], [-1 + 2 / 7 * 3, -1 + 2 / 7 * 5]]), 8, 0.6)
    np.testing.assert_allclose(t.sum(1).numpy(), [1, 1], atol=1e-6)
    assert t[0].argmax() == 7 and t[1].argmax() == 5 * 8 + 3  # row-major: (row 0, col 7) and (row 5, col 3)


def test_shift_moves_the_target_with_the_image():
    img = torch.zeros(16, 1, 64, 64)
    img[:, :, 20:24, 40:44] = 1.0  # a bright patch around pixel (22, 42)
    pts = torch.as_tensor(pixel_to_grid(np.array([[22.0, 42.0]] * 16), 64, 8))
    out, moved = _shift(img, pts, 3, 8, torch.Generator().manual_seed(0))
    for i in range(16):
        rows, cols = torch.nonzero(out[i, 0] > 0.5, as_tuple=True)
        want = pixel_to_grid(np.array([[rows.float().mean() + 0.5, cols.float().mean() + 0.5]]), 64, 8)[0]
        np.testing.assert_allclose(moved[i].numpy(), want, atol=1e-5)


def test_log_depth_encoding_resolves_the_wrist_range():
    bb = load_backbone()  # the shipped checkpoint carries its encoding
    d = torch.tensor([0.05, 0.1, 0.2, 0.3, 1.0, 2.5]).view(1, 1, 1, 6)
    bb.depth_encoding = "linear"
    lin = bb.normalize_depth(d).flatten()
    bb.depth_encoding = "log"
    log = bb.normalize_depth(d).flatten()
    assert torch.all(lin[:4] == lin[0]) and lin[0] < -0.99  # everything nearer than 30 cm is flattened
    assert torch.all(log.diff() > 0.05) and log.min() >= -1 and log.max() <= 1
    with pytest.raises(ValueError, match="Unknown depth encoding"):
        type(bb)(bb.clip, bb.model_name, depth_encoding="cubic")
    assert set(DEPTH_ENCODINGS) == {"linear", "log"}


def test_saved_backbone_keeps_its_depth_encoding(tmp_path):
    bb = load_backbone()
    for enc in ("log", "linear"):
        bb.depth_encoding = enc
        bb.save(tmp_path / f"{enc}.safetensors")
        assert load_backbone(pretrained=tmp_path / f"{enc}.safetensors").depth_encoding == enc


def test_render_views_projects_the_object_into_both_cameras():
    views = render_views(1, every=15, camera_size=32, grid=8, progress=False)
    assert views.rgb.shape[1:] == (2, 32, 32, 3) and views.points.shape[1:] == (2, 2)
    assert views.categories[0] == "cube" and views.visible[0, 0]
    # the front view's projected centre lands on the red cube
    x, y = views.points[0, 0]
    col, row = (((np.array([x, y]) + 1) * 7 / 2 + 0.5) * 4 - 0.5).round().astype(int)
    r, g, b = views.rgb[0, 0, row, col].astype(int)
    assert r > g + 60 and r > b + 60, (r, g, b)
    # random object colours repaint the object only: the same grasp, points and depth
    tinted = render_views(1, every=15, camera_size=32, grid=8, object_colours="random", progress=False)
    assert np.array_equal(tinted.points, views.points) and np.array_equal(tinted.depth, views.depth)
    assert not np.array_equal(tinted.rgb[0, 0, row, col], views.rgb[0, 0, row, col])


def _synthetic_views(n: int = 48, size: int = 64) -> ViewSet:
    """A bright square at a random place on a grey floor, depth nearer there; both 'cameras' alike."""
    rng = np.random.default_rng(0)
    rgb = np.full((n, 2, size, size, 3), 120, np.uint8)
    depth = np.full((n, 2, size, size, 1), 1.0, np.float32)
    centres = rng.integers(6, size - 6, (n, 2))
    for i, (r, c) in enumerate(centres):
        rgb[i, :, r - 4:r + 4, c - 4:c + 4] = (230, 40, 30)
        depth[i, :, r - 4:r + 4, c - 4:c + 4] = 0.8
    pts = pixel_to_grid(centres.astype(float), size, 8)
    return ViewSet(rgb, depth, np.stack([pts, pts], 1), np.ones((n, 2), bool), ["cube"] * n,
                   np.zeros((n, 3), np.float32), 8)


def test_spatial_finetune_lowers_the_keypoint_loss():
    views = _synthetic_views()
    bb = load_backbone(pretrained=None, freeze=False)  # random weights: the shipped tower already localises
    rec = spatial_finetune(bb, views, SpatialConfig(steps=60, batch_size=16, warmup=2, lr=1e-3, shift=0),
                           progress=False, log=lambda _: None)
    # the cross-entropy to the target falls by a margin (its floor is the target's own entropy)
    assert rec["final_keypoint"] < rec["initial_keypoint"] - 0.5, rec
    assert not any(p.requires_grad for p in load_backbone().parameters())
    with pytest.raises(ValueError, match="grid"):
        views.grid = 4
        spatial_finetune(bb, views, SpatialConfig(steps=1), progress=False)


def test_object_head_is_fitted_saved_and_loaded(tmp_path):
    from safeadapt_bench.backbones.spatial import fit_object_head

    views = _synthetic_views()
    bb = load_backbone(pretrained=None)  # random tower: the square still stands out in the patch embedding
    bb.object_head = None
    err = fit_object_head(bb, views, steps=150)
    assert bb.object_head is not None and not any(p.requires_grad for p in bb.object_head.parameters())
    assert err["front_error_train"] < 1.5  # in patches; a guess at the centre is about 2.5 away
    bb.save(tmp_path / "bb.safetensors")
    again = load_backbone(pretrained=tmp_path / "bb.safetensors")
    patches = torch.randn(3, 64, bb.vision_width)
    torch.testing.assert_close(again.object_head.locate(patches, "wrist"), bb.object_head.locate(patches, "wrist"))
    with pytest.raises(ValueError, match="not 'side'"):
        bb.object_head.locate(patches, "side")


def test_extractor_without_an_object_head_is_a_clear_error():
    import gymnasium as gym

    from safeadapt_bench.features import BackboneExtractor

    space = gym.spaces.Dict({"rgb": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
                             "depth": gym.spaces.Box(0, 3, (16, 16, 1), np.float32)})
    bare = load_backbone(pretrained=None)
    with pytest.raises(ValueError, match="needs a backbone with an object head"):
        BackboneExtractor(space, backbone=bare, pool="spatial_softmax", object_keypoints=True)
    ext = BackboneExtractor(space, pool="spatial_softmax", keypoints=4, object_keypoints=True)  # the shipped one
    obs = {"rgb": torch.randint(0, 255, (2, 16, 16, 3), dtype=torch.uint8), "depth": torch.rand(2, 16, 16, 1)}
    feats = ext(obs)
    assert feats.shape == (2, ext.features_dim) and ext.features_dim == 8 + 128 + 3
    assert torch.all(feats[:, -3:-1].abs() <= 1)  # the object's (x, y) lies in the grid's coordinates
