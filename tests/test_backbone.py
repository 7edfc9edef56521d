"""Backbone loading: local checkpoints reproduce outputs, bad inputs fail clearly, the default ships."""

from __future__ import annotations

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from safeadapt_bench.backbones import (
    DEFAULT_CHECKPOINT,
    DEFAULT_MODEL,
    load_backbone,
    register_default_config,
)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A random open_clip model of the default architecture, saved as .pt and .safetensors."""
    register_default_config()
    torch.manual_seed(0)
    # frozen like the backbone: PyTorch picks a different (equally valid) attention kernel otherwise
    model = open_clip.create_model(DEFAULT_MODEL).eval().requires_grad_(False)
    d = tmp_path_factory.mktemp("ckpt")
    sd = model.state_dict()
    torch.save(sd, d / "model.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, d / "train_ckpt.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(d / "model.safetensors"))
    return model, d


def _inputs():
    g = torch.Generator().manual_seed(1)
    rgb = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8, generator=g)
    depth = 0.5 + 1.5 * torch.rand(3, 64, 64, 1, generator=g)
    return rgb, depth


@pytest.mark.parametrize("fname", ["model.pt", "train_ckpt.pt", "model.safetensors"])
def test_local_checkpoint_reproduces_saved_model(saved_model, fname):
    model, d = saved_model
    bb = load_backbone(DEFAULT_MODEL, pretrained=d / fname, depth="stem")
    rgb, depth = _inputs()
    x = bb.preprocess(rgb)
    tokens = bb.tokenize(["pick up the milk carton", "a photo of a red cube"])
    with torch.no_grad():
        assert torch.equal(bb.clip.encode_image(x), model.encode_image(x))
        assert torch.equal(bb.encode_text(tokens, normalize=False), model.encode_text(tokens))
        # a fresh depth stem starts at zero: the RGB model's outputs are unchanged with depth fed in
        assert torch.equal(bb.encode_image(rgb, depth), model.encode_image(x, normalize=True))
    assert bb.pretrained == str(d / fname)
    assert not any(p.requires_grad for p in bb.parameters()), "frozen by default"


def test_backbone_save_load_roundtrip_with_depth(tmp_path):
    torch.manual_seed(0)
    bb = load_backbone(pretrained=None, depth="stem")
    with torch.no_grad():
        for p in bb.clip.visual.conv1.depth.parameters():
            p.normal_(0, 0.05)
    rgb, depth = _inputs()
    path = bb.save(tmp_path / "bb.safetensors")
    bb2 = load_backbone(pretrained=path)
    assert bb2.model_name == DEFAULT_MODEL and bb2.depth_mode == "stem"
    with torch.no_grad():
        assert torch.equal(bb2.encode_image(rgb, depth), bb.encode_image(rgb, depth))
        assert not torch.equal(bb2.encode_image(rgb, depth), bb2.encode_image(rgb))


def test_preprocess_accepts_layouts_and_scales():
    bb = load_backbone(pretrained=None, depth="channel")
    rgb, depth = _inputs()
    a = bb.preprocess(rgb, depth)
    b = bb.preprocess(rgb.permute(0, 3, 1, 2).float() / 255.0, depth.permute(0, 3, 1, 2))
    assert a.shape == (3, 4, 64, 64)
    assert torch.allclose(a, b, atol=1e-6)
    big = bb.preprocess(torch.nn.functional.interpolate(rgb.permute(0, 3, 1, 2).float(), size=96))
    assert big.shape == (3, 3, 64, 64)
    with pytest.raises(ValueError, match="channel"):
        bb.preprocess(torch.zeros(2, 64, 64, 5))


def test_unknown_model_name_is_clear():
    with pytest.raises(ValueError, match=r"Unknown open_clip model 'ViT-B-3'.*Did you mean"):
        load_backbone("ViT-B-3", pretrained=None)


def test_unknown_tag_is_clear():
    with pytest.raises(ValueError, match=r"Unknown pretrained tag 'nosuchtag'.*known tags"):
        load_backbone("ViT-B-32", pretrained="nosuchtag")
    with pytest.raises(ValueError, match="embedded"):
        load_backbone("ViT-B-32", pretrained="default")


def test_corrupt_and_unsafe_checkpoints_are_refused(tmp_path, saved_model):
    _, d = saved_model
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(ValueError, match="corrupt"):
        load_backbone(DEFAULT_MODEL, pretrained=junk)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((d / "model.safetensors").read_bytes()[:5000])
    with pytest.raises(ValueError, match="corrupt"):
        load_backbone(DEFAULT_MODEL, pretrained=cut)
    evil = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(1), "cfg": _Custom()}, evil)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_backbone(DEFAULT_MODEL, pretrained=evil)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_backbone(DEFAULT_MODEL, pretrained=tmp_path / "missing.pt")


class _Custom:
    pass


def test_mismatched_checkpoint_names_the_problem(tmp_path, saved_model):
    model, _ = saved_model
    sd = dict(model.state_dict())
    sd.pop("ln_final.weight")
    sd["visual.proj"] = torch.zeros(3, 3)
    sd["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"does not match model.*missing key.*unexpected key.*shape mismatch"):
        load_backbone(DEFAULT_MODEL, pretrained=path)
    good = load_backbone(pretrained=None).save(tmp_path / "ours.safetensors")
    with pytest.raises(ValueError, match="holds model"):
        load_backbone("ViT-B-32", pretrained=good)


def test_embedded_default_ships_small_and_loads_offline():
    assert DEFAULT_CHECKPOINT.is_file(), "run `safeadapt-bench backbone pretrain`"
    assert DEFAULT_CHECKPOINT.stat().st_size < 20 * 2**20
    bb = load_backbone()
    assert bb.model_name == DEFAULT_MODEL and bb.pretrained == "default"
    rgb, depth = _inputs()
    with torch.no_grad():
        emb = bb.encode_image(rgb, depth)
    assert emb.shape == (3, bb.embed_dim) and torch.isfinite(emb).all()
