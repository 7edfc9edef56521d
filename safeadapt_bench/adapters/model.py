"""Apply adapters to a backbone's vision tower; activate, disable, save, load and swap them.

LoRA goes through peft (``inject_adapter_in_model`` with explicit ``target_modules`` taken from
``named_modules()``); bottleneck adapters wrap each block's ``ls_1`` / ``ls_2``. A backbone can hold
several named adapters of either kind; exactly one (or none) is active. The active adapter's
weights are trainable, every other weight keeps its ``requires_grad`` (frozen for a frozen backbone).

An adapter file is a small safetensors file holding only that adapter's weights, with its config
and the backbone's model name in the metadata.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from safeadapt_bench.adapters.config import AdapterConfig
from safeadapt_bench.adapters.layer import BottleneckLayer, ExactLoraMHA, LoraMHA

#: ``format`` metadata of adapter files.
ADAPTER_FORMAT = "safeadapt-adapter"
_BLOCKS = "clip.visual.transformer.resblocks"
_SITE_MODULE = {"attn": "ls_1", "mlp": "ls_2"}


def _registry(backbone: nn.Module) -> dict[str, AdapterConfig]:
    if not hasattr(backbone, "adapter_configs"):
        backbone.adapter_configs = {}
        backbone.active_adapter = None
    return backbone.adapter_configs


def _tuner_layers(backbone: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, mod in backbone.named_modules():
        if isinstance(mod, BaseTunerLayer | BottleneckLayer):
            yield name, mod


def add_adapter(
    backbone: nn.Module, config: AdapterConfig, name: str = "default", *, activate: bool = True
) -> list[str]:
    """Add adapter ``name`` to ``backbone``'s vision blocks; returns the adapted module names.

    Raises:
        ValueError: the name exists, the placement names blocks the model lacks, or a LoRA target
            is not a module of the blocks (the message lists the available ones).
    """
    reg = _registry(backbone)
    if name in reg:
        raise ValueError(
            f"Adapter {name!r} already exists on this backbone; pick another name or delete_adapter() it first."
        )
    blocks = backbone.blocks
    idx = config.block_indices(len(blocks))
    modules = dict(backbone.named_modules())
    targets: list[str] = []
    if config.kind == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        for i in idx:
            for t in config.lora_targets:
                full = f"{_BLOCKS}.{i}.{t}"
                if full not in modules:
                    avail = sorted(
                        {
                            n.split(".", 1)[1]
                            for n, m in blocks[i].named_modules(prefix="b")
                            if isinstance(m, nn.Linear | nn.MultiheadAttention)
                            and ".base_layer" not in n
                            and ".lora_" not in n
                            and ".adapters" not in n
                        }
                    )
                    raise ValueError(
                        f"LoRA target {t!r} is not a module of vision block {i} of "
                        f"{backbone.model_name}; available: {avail}."
                    )
                targets.append(full)
        lcfg = LoraConfig(
            r=config.rank, lora_alpha=config.lora_alpha, lora_dropout=config.dropout, target_modules=targets
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*peft_config.*")
            warnings.filterwarnings("ignore", message=".*multihead.*", category=UserWarning)
            inject_adapter_in_model(lcfg, backbone, adapter_name=name)
        for t in targets:
            mod = backbone.get_submodule(t)
            if isinstance(mod, LoraMHA) and not isinstance(mod, ExactLoraMHA):
                mod.__class__ = ExactLoraMHA
    else:
        for i in idx:
            block = blocks[i]
            width = block.ln_1.normalized_shape[0] if hasattr(block, "ln_1") else None
            for site in config.bottleneck_sites:
                attr = _SITE_MODULE[site]
                mod = getattr(block, attr, None)
                if mod is None or width is None:
                    raise ValueError(
                        f"Vision block {i} of {backbone.model_name} has no `{attr}`; bottleneck "
                        "adapters need open_clip ResidualAttentionBlocks."
                    )
                if not isinstance(mod, BottleneckLayer):
                    mod = BottleneckLayer(mod, width)
                    setattr(block, attr, mod)
                mod.add_adapter(name, config.bottleneck_dim, config.bottleneck_scale)
                targets.append(f"{_BLOCKS}.{i}.{attr}")
    reg[name] = config
    set_active_adapter(backbone, name if activate else backbone.active_adapter)
    return targets


def set_active_adapter(backbone: nn.Module, name: str | None, *, trainable: bool = True) -> None:
    """Make ``name`` the one active adapter (``None``: none; the backbone's own outputs).

    The active adapter's weights get ``requires_grad=trainable``; all other adapters are frozen.
    """
    reg = _registry(backbone)
    if name is not None and name not in reg:
        raise ValueError(f"No adapter {name!r} on this backbone; it has {sorted(reg) or 'none'}.")
    for _, mod in _tuner_layers(backbone):
        if isinstance(mod, BottleneckLayer):
            mod.set_adapter(name)
            if not trainable:
                mod.adapters.requires_grad_(False)
            continue
        if name is None or name not in mod.lora_A:
            mod.enable_adapters(False)
        else:
            mod.enable_adapters(True)
            mod.set_adapter(name)
            if not trainable:
                for ln in mod.adapter_layer_names:
                    getattr(mod, ln).requires_grad_(False)
    backbone.active_adapter = name


@contextmanager
def adapters_disabled(backbone: nn.Module) -> Iterator[None]:
    """Run the block with no adapter active (exactly the backbone's outputs), then restore."""
    reg = _registry(backbone)
    prev = backbone.active_adapter
    grads = {n: p.requires_grad for n, p in backbone.named_parameters()}
    set_active_adapter(backbone, None)
    try:
        yield
    finally:
        if prev in reg:
            set_active_adapter(backbone, prev)
        for n, p in backbone.named_parameters():
            p.requires_grad_(grads.get(n, p.requires_grad))


def delete_adapter(backbone: nn.Module, name: str) -> None:
    """Remove adapter ``name`` (its wrapper layers stay, as pass-throughs)."""
    reg = _registry(backbone)
    if name not in reg:
        raise ValueError(f"No adapter {name!r} on this backbone; it has {sorted(reg) or 'none'}.")
    for _, mod in _tuner_layers(backbone):
        if isinstance(mod, BottleneckLayer):
            mod.delete_adapter(name)
        elif name in mod.lora_A:
            mod.delete_adapter(name)
    del reg[name]
    if backbone.active_adapter == name:
        set_active_adapter(backbone, None)


def adapter_state_dict(backbone: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """The weights of adapter ``name`` only, keyed without the adapter name."""
    if name not in _registry(backbone):
        raise ValueError(f"No adapter {name!r} on this backbone; it has {sorted(_registry(backbone)) or 'none'}.")
    out: dict[str, torch.Tensor] = {}
    for mname, mod in _tuner_layers(backbone):
        if isinstance(mod, BottleneckLayer):
            holders = [("adapters", mod.adapters)]
        else:
            holders = [(ln, getattr(mod, ln)) for ln in mod.adapter_layer_names]
        for ln, holder in holders:
            if name in holder:
                sub = holder[name]
                items = sub.named_parameters() if isinstance(sub, nn.Module) else [("", sub)]
                for pn, p in items:
                    out[f"{mname}.{ln}" + (f".{pn}" if pn else "")] = p.detach().cpu().clone()
    return out


def _set_adapter_weights(backbone: nn.Module, name: str, sd: dict[str, torch.Tensor], source: str) -> None:
    own = adapter_state_dict(backbone, name)
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    shapes = [k for k in own if k in sd and own[k].shape != sd[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(
            f"Adapter file {source!r} does not fit this backbone: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, shape mismatches {shapes[:3]}."
        )
    params = {}
    for mname, mod in _tuner_layers(backbone):
        holders = (
            [("adapters", mod.adapters)]
            if isinstance(mod, BottleneckLayer)
            else [(ln, getattr(mod, ln)) for ln in mod.adapter_layer_names]
        )
        for ln, holder in holders:
            if name in holder:
                sub = holder[name]
                items = sub.named_parameters() if isinstance(sub, nn.Module) else [("", sub)]
                for pn, p in items:
                    params[f"{mname}.{ln}" + (f".{pn}" if pn else "")] = p
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(sd[k].to(p.dtype))


def save_adapter(backbone: nn.Module, path: str | Path, name: str | None = None) -> Path:
    """Write adapter ``name`` (default: the active one) to ``path`` as safetensors."""
    from safetensors.torch import save_file

    name = name or backbone.active_adapter
    if name is None:
        raise ValueError("No adapter to save: the backbone has no active adapter; pass `name`.")
    cfg = _registry(backbone).get(name)
    sd = adapter_state_dict(backbone, name)
    meta = {
        "format": ADAPTER_FORMAT,
        "config": cfg.to_json() if cfg else "{}",
        "model_name": backbone.model_name,
        "n_blocks": str(len(backbone.blocks)),
        "name": name,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=meta)
    return path


def load_adapter(backbone: nn.Module, path: str | Path, name: str | None = None, *, activate: bool = True) -> str:
    """Add the adapter saved at ``path`` under ``name`` (default: its saved name); returns the name.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an adapter file, corrupt, or saved for a different backbone.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Adapter file {str(path)!r} does not exist.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"Adapter file {str(path)!r} is corrupt or not safetensors ({err}).") from err
    if meta.get("format") != ADAPTER_FORMAT:
        raise ValueError(
            f"{str(path)!r} is not an adapter file (no format={ADAPTER_FORMAT!r} metadata); "
            "write one with save_adapter()."
        )
    if meta.get("model_name") != backbone.model_name or int(meta.get("n_blocks", -1)) != len(backbone.blocks):
        raise ValueError(
            f"Adapter {str(path)!r} was trained on {meta.get('model_name')!r} "
            f"({meta.get('n_blocks')} blocks), not on {backbone.model_name!r}; load the matching backbone."
        )
    cfg = AdapterConfig.from_json(meta["config"])
    name = name or meta.get("name") or "default"
    add_adapter(backbone, cfg, name, activate=False)
    try:
        _set_adapter_weights(backbone, name, sd, str(path))
    except ValueError:
        delete_adapter(backbone, name)
        raise
    if activate:
        set_active_adapter(backbone, name)
    return name


def parameter_counts(backbone: nn.Module, name: str | None = None) -> dict[str, float]:
    """Parameter counts of adapter ``name`` (default: active) against the backbone's own weights.

    Returns ``adapter``, ``backbone`` (all weights but adapters), ``vision`` (vision tower weights
    but adapters), ``fraction`` (adapter / (backbone + adapter)) and ``fraction_vision``.
    """
    name = name or backbone.active_adapter
    n_adapter = sum(v.numel() for v in adapter_state_dict(backbone, name).values()) if name else 0
    all_adapters = sum(sum(v.numel() for v in adapter_state_dict(backbone, n).values()) for n in _registry(backbone))

    def own(prefix: str) -> int:
        return sum(
            p.numel()
            for n, p in backbone.named_parameters()
            if n.startswith(prefix) and ".lora_" not in n and ".adapters." not in n
        )

    total = own("")
    vision = own("clip.visual.")
    del all_adapters
    return {
        "adapter": n_adapter,
        "backbone": total,
        "vision": vision,
        "fraction": n_adapter / (total + n_adapter),
        "fraction_vision": n_adapter / (vision + n_adapter),
    }


def describe(backbone: nn.Module) -> str:
    """One line per adapter: name, kind, placement, size (for logs)."""
    reg = _registry(backbone)
    return json.dumps(
        {n: {"kind": c.kind, "placement": c.placement, "active": n == backbone.active_adapter} for n, c in reg.items()}
    )
