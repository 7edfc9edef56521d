"""Adapters: identity at start, only adapter weights train, exact disable, save / load / swap, errors."""

from __future__ import annotations

import pytest
import torch

from safeadapt_bench.adapters import (
    AdapterConfig,
    adapter_state_dict,
    adapters_disabled,
    add_adapter,
    delete_adapter,
    load_adapter,
    parameter_counts,
    save_adapter,
    set_active_adapter,
)
from safeadapt_bench.backbones import load_backbone

CONFIGS = {
    "lora": AdapterConfig("lora", rank=4, placement="all"),
    "bottleneck": AdapterConfig("bottleneck", bottleneck_dim=16, placement="all"),
}


def _backbone(seed: int = 0):
    torch.manual_seed(seed)
    bb = load_backbone(pretrained=None, depth="stem")
    with torch.no_grad():  # a trained-looking depth stem, so depth matters
        for p in bb.clip.visual.conv1.depth.parameters():
            p.normal_(0, 0.05)
    return bb


def _inputs():
    g = torch.Generator().manual_seed(1)
    return (
        torch.randint(0, 256, (4, 64, 64, 3), dtype=torch.uint8, generator=g),
        0.5 + 1.5 * torch.rand(4, 64, 64, 1, generator=g),
    )


def _perturb(bb, name):
    """Give the adapter non-zero weights (as training would)."""
    with torch.no_grad():
        for p in adapter_state_dict(bb, name):
            bb.get_parameter(_param_name(bb, name, p)).normal_(0, 0.05)


def _param_name(bb, adapter, key):
    # keys drop the adapter name: ``...lora_A.weight`` is the parameter ``...lora_A.<name>.weight``
    for marker in (".lora_A", ".lora_B", ".adapters"):
        if marker in key:
            head, tail = key.split(marker, 1)
            return f"{head}{marker}.{adapter}{tail}"
    raise KeyError(key)


@pytest.mark.parametrize("kind", ["lora", "bottleneck"])
def test_adapter_starts_as_identity(kind):
    bb = _backbone()
    rgb, depth = _inputs()
    before = bb.encode_image(rgb, depth).detach()
    add_adapter(bb, CONFIGS[kind], "a")
    after = bb.encode_image(rgb, depth).detach()
    # zero-initialised up / B matrices add exactly zero; the only difference is PyTorch choosing a
    # different attention kernel once weights require grad (float rounding, ~1e-7)
    assert torch.allclose(after, before, rtol=0, atol=1e-6)
    bb.requires_grad_(False)
    assert torch.equal(bb.encode_image(rgb, depth), before)


@pytest.mark.parametrize("kind", ["lora", "bottleneck"])
def test_only_adapter_parameters_get_gradients(kind):
    bb = _backbone()
    add_adapter(bb, CONFIGS[kind], "a")
    add_adapter(bb, CONFIGS[kind], "other", activate=False)
    rgb, depth = _inputs()
    bb.encode_image(rgb, depth).pow(2).sum().backward()
    with_grad = {n for n, p in bb.named_parameters() if p.grad is not None}
    trainable = {n for n, p in bb.named_parameters() if p.requires_grad}
    assert with_grad and with_grad == trainable
    assert all(".a." in n for n in with_grad), "only the active adapter trains"
    own = {n for n in with_grad if ".lora_" not in n and ".adapters." not in n}
    assert not own, f"backbone weights got gradients: {sorted(own)[:3]}"
    # the up / B matrices (zero at start) get non-zero gradients; every adapter tensor has one
    assert len(with_grad) == len(adapter_state_dict(bb, "a"))
    assert any(bb.get_parameter(n).grad.abs().sum() > 0 for n in with_grad)


@pytest.mark.parametrize("kind", ["lora", "bottleneck"])
def test_disabling_restores_backbone_outputs_exactly_after_training(kind):
    bb = _backbone()
    rgb, depth = _inputs()
    with torch.no_grad():
        ref = bb.encode_image(rgb, depth)
    add_adapter(bb, CONFIGS[kind], "a")
    _perturb(bb, "a")
    opt = torch.optim.SGD([p for p in bb.parameters() if p.requires_grad], lr=0.1)
    for _ in range(3):  # training forwards must not disturb the frozen weights (peft's MHA merge does)
        opt.zero_grad()
        bb.encode_image(rgb, depth).sum().backward()
        opt.step()
    with torch.no_grad():
        adapted = bb.encode_image(rgb, depth)
        assert not torch.allclose(adapted, ref, atol=1e-4)
        with adapters_disabled(bb):
            assert bb.active_adapter is None
            assert torch.equal(bb.encode_image(rgb, depth), ref)
        assert bb.active_adapter == "a"
        assert torch.equal(bb.encode_image(rgb, depth), adapted)
    assert all(p.requires_grad for n, p in bb.named_parameters() if ".a." in n)


def test_save_load_and_swap(tmp_path):
    bb = _backbone()
    rgb, depth = _inputs()
    with torch.no_grad():
        ref = bb.encode_image(rgb, depth)
    add_adapter(bb, CONFIGS["lora"], "lora")
    add_adapter(bb, CONFIGS["bottleneck"], "hb")
    _perturb(bb, "lora")
    _perturb(bb, "hb")
    with torch.no_grad():
        set_active_adapter(bb, "lora")
        out_lora = bb.encode_image(rgb, depth)
        set_active_adapter(bb, "hb")
        out_hb = bb.encode_image(rgb, depth)
        set_active_adapter(bb, "lora")  # swap back at run time
        assert torch.equal(bb.encode_image(rgb, depth), out_lora)
        assert not torch.allclose(out_lora, out_hb, atol=1e-4)
    p_lora = save_adapter(bb, tmp_path / "lora.safetensors", "lora")
    p_hb = save_adapter(bb, tmp_path / "hb.safetensors", "hb")
    backbone_bytes = sum(p.numel() * 4 for n, p in bb.named_parameters() if ".lora_" not in n and ".adapters." not in n)
    assert p_lora.stat().st_size < 0.05 * backbone_bytes and p_hb.stat().st_size < 0.05 * backbone_bytes

    fresh = _backbone()  # same seed: the same backbone weights, no adapters
    assert load_adapter(fresh, p_hb) == "hb"
    assert load_adapter(fresh, p_lora, "mine") == "mine"
    with torch.no_grad():
        assert torch.equal(fresh.encode_image(rgb, depth), out_lora)
        set_active_adapter(fresh, "hb")
        assert torch.equal(fresh.encode_image(rgb, depth), out_hb)
        set_active_adapter(fresh, None)
        assert torch.equal(fresh.encode_image(rgb, depth), ref)
        delete_adapter(fresh, "hb")
        with pytest.raises(ValueError, match="No adapter 'hb'"):
            set_active_adapter(fresh, "hb")


def test_adapter_for_another_backbone_is_refused(tmp_path):
    bb = _backbone()
    add_adapter(bb, AdapterConfig("bottleneck", bottleneck_dim=4), "a")
    path = save_adapter(bb, tmp_path / "a.safetensors")
    other = _backbone()
    other.model_name = "ViT-B-32"  # pretend: the check reads the name and block count
    with pytest.raises(ValueError, match="was trained on 'SafeAdapt-ViT-T-8'"):
        load_adapter(other, path)
    with pytest.raises(ValueError, match="not an adapter file"):
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
        load_adapter(bb, tmp_path / "x.safetensors", "b")


def test_placements_and_bad_placements():
    cfg = AdapterConfig("bottleneck")
    assert {p: AdapterConfig(placement=p).block_indices(4) for p in ("bottom", "middle", "top", "all")} == {
        "bottom": [0],
        "middle": [1],
        "top": [3],
        "all": [0, 1, 2, 3],
    }
    assert AdapterConfig(placement="middle").block_indices(12) == [4, 5, 6, 7]
    assert AdapterConfig(placement="top").block_indices(12) == [8, 9, 10, 11]
    assert cfg.block_indices(4) == [0, 1, 2, 3]
    bb = _backbone()
    with pytest.raises(ValueError, match=r"block\(s\) \[7\] that the model does not have: it has 4"):
        add_adapter(bb, AdapterConfig("lora", placement=(0, 7)))
    with pytest.raises(ValueError, match="Unknown adapter placement 'center'"):
        AdapterConfig(placement="center")
    with pytest.raises(ValueError, match=r"LoRA target 'mlp.fc1' is not a module.*available: \[.*'mlp.c_fc'"):
        add_adapter(bb, AdapterConfig("lora", lora_targets=("mlp.fc1",)))
    targets = add_adapter(bb, AdapterConfig("lora", placement="top"), "t")
    assert targets == [f"clip.visual.transformer.resblocks.3.{m}" for m in ("attn", "mlp.c_fc", "mlp.c_proj")]


def test_trainable_fraction_is_small():
    bb = _backbone()
    add_adapter(bb, AdapterConfig("lora", rank=8), "l")
    counts = parameter_counts(bb, "l")
    trainable = sum(p.numel() for p in bb.parameters() if p.requires_grad)
    assert counts["adapter"] == trainable
    assert 0 < counts["fraction"] < counts["fraction_vision"] < 0.1
