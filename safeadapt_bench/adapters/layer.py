"""Houlsby-style bottleneck adapters, as a wrapper layer with named adapters and enable/disable."""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    """``up(gelu(down(x))) * scale`` with ``up`` zero-initialised, so it starts as a zero residual."""

    def __init__(self, width: int, dim: int, scale: float = 1.0):
        super().__init__()
        self.down = nn.Linear(width, dim)
        self.act = nn.GELU()
        self.up = nn.Linear(dim, width)
        self.scale = scale
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x))) * self.scale


class BottleneckLayer(nn.Module):
    """Wraps a sublayer's output module: ``y = base(x)``, then ``y + adapter(y)`` for the active one.

    Wrapping open_clip's ``ls_1`` / ``ls_2`` (LayerScale or Identity, applied to the attention and
    MLP outputs before the residual add) puts the adapter exactly where Houlsby et al. place it.
    When disabled, or with no active adapter here, it returns ``base(x)`` unchanged (bit-exact).
    """

    def __init__(self, base_layer: nn.Module, width: int):
        super().__init__()
        self.base_layer = base_layer
        self.width = width
        self.adapters = nn.ModuleDict()
        self.active_adapter: str | None = None
        self.disabled = False

    def add_adapter(self, name: str, dim: int, scale: float = 1.0) -> None:
        if name in self.adapters:
            raise ValueError(f"Adapter {name!r} already exists here.")
        ref = next(iter(self.base_layer.parameters()), None)
        self.adapters[name] = Bottleneck(self.width, dim, scale).to(ref.device if ref is not None else "cpu")

    def set_adapter(self, name: str | None) -> None:
        """Activate ``name`` here (or none): its weights become trainable, the others frozen."""
        self.active_adapter = name if name in self.adapters else None
        for n, mod in self.adapters.items():
            mod.requires_grad_(n == self.active_adapter)

    def delete_adapter(self, name: str) -> None:
        if name in self.adapters:
            del self.adapters[name]
        if self.active_adapter == name:
            self.active_adapter = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_layer(x)
        if self.disabled or self.active_adapter is None:
            return y
        return y + self.adapters[self.active_adapter](y)


from peft.tuners.lora.layer import MultiheadAttention as LoraMHA  # noqa: E402


class ExactLoraMHA(LoraMHA):
    """peft's LoRA ``nn.MultiheadAttention`` that leaves the base weights bit-exact.

    peft merges the LoRA delta into ``in_proj_weight`` / ``out_proj.weight`` for each forward and
    then subtracts it again, and ``(W + dW) - dW`` differs from ``W`` by rounding. Over many training
    steps the frozen backbone would drift, so disabling the adapter would not give the backbone's
    outputs back. Here the original Parameter objects are put back after every forward.
    """

    def forward(self, query: torch.Tensor, *args, **kwargs):
        if self.disable_adapters or self.merged:
            return super().forward(query, *args, **kwargs)
        base = self.get_base_layer()
        out_base = base.out_proj.get_base_layer()
        w_in, w_out = base.in_proj_weight, out_base.weight
        try:
            return super().forward(query, *args, **kwargs)
        finally:
            del base.in_proj_weight
            base.register_parameter("in_proj_weight", w_in)
            del out_base.weight
            out_base.register_parameter("weight", w_out)
