"""Adapter configuration: which kind, how big, and in which vision blocks."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

#: Named placements. Each of bottom / middle / top is a third of the blocks (at least one block):
#: with 4 blocks, bottom = [0], middle = [1], top = [3]; with 12, [0-3], [4-7], [8-11].
PLACEMENTS: tuple[str, ...] = ("bottom", "middle", "top", "all")
KINDS: tuple[str, ...] = ("lora", "bottleneck")


@dataclass
class AdapterConfig:
    """How to adapt the vision tower of a :class:`~safeadapt_bench.backbones.Backbone`.

    Attributes:
        kind: ``"lora"`` (peft LoRA on ``lora_targets``) or ``"bottleneck"`` (Houlsby adapters after
            the attention and MLP sublayers, inside the residual, with a zero-initialised up-projection).
        rank: LoRA rank ``r``.
        alpha: LoRA ``lora_alpha`` (scaling ``alpha / rank``); ``None`` means ``2 * rank``.
        dropout: LoRA dropout on the adapter input (0 keeps training deterministic).
        lora_targets: module names inside each block that LoRA adapts. ``"attn"`` is the block's
            ``nn.MultiheadAttention`` (peft adapts its in- and out-projections).
        bottleneck_dim: hidden size of each bottleneck adapter.
        bottleneck_scale: multiplier on the bottleneck adapter's output.
        bottleneck_sites: where bottleneck adapters go in a block: after ``"attn"``, after ``"mlp"``
            (Houlsby uses both; Pfeiffer only ``"mlp"``).
        placement: ``"bottom"``, ``"middle"``, ``"top"``, ``"all"`` (see ``PLACEMENTS``), or explicit
            block indices such as ``(0, 3)``.
    """

    kind: str = "lora"
    rank: int = 8
    alpha: float | None = None
    dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("attn", "mlp.c_fc", "mlp.c_proj")
    bottleneck_dim: int = 32
    bottleneck_scale: float = 1.0
    bottleneck_sites: tuple[str, ...] = ("attn", "mlp")
    placement: str | tuple[int, ...] = field(default="all")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Unknown adapter kind {self.kind!r}; choose one of {KINDS}.")
        if isinstance(self.placement, list):
            self.placement = tuple(self.placement)
        if isinstance(self.placement, str) and self.placement not in PLACEMENTS:
            raise ValueError(
                f"Unknown adapter placement {self.placement!r}; choose one of {PLACEMENTS} or a tuple of block indices."
            )
        self.lora_targets = tuple(self.lora_targets)
        self.bottleneck_sites = tuple(self.bottleneck_sites)
        bad = [s for s in self.bottleneck_sites if s not in ("attn", "mlp")]
        if bad:
            raise ValueError(f"Unknown bottleneck site(s) {bad}; use 'attn' and/or 'mlp'.")
        if self.rank < 1 or self.bottleneck_dim < 1:
            raise ValueError("rank and bottleneck_dim must be >= 1.")

    @property
    def lora_alpha(self) -> float:
        return float(self.alpha if self.alpha is not None else 2 * self.rank)

    def block_indices(self, n_blocks: int) -> list[int]:
        """The block indices this placement selects in a tower of ``n_blocks`` blocks.

        Raises:
            ValueError: explicit indices that the model does not have.
        """
        if isinstance(self.placement, str):
            k = max(1, round(n_blocks / 3))
            start = {"bottom": 0, "middle": (n_blocks - k) // 2, "top": n_blocks - k, "all": 0}[self.placement]
            return list(range(n_blocks)) if self.placement == "all" else list(range(start, start + k))
        idx = sorted(set(int(i) for i in self.placement))
        bad = [i for i in idx if not 0 <= i < n_blocks]
        if bad or not idx:
            raise ValueError(
                f"Adapter placement {self.placement} names block(s) {bad or '(none)'} that the model "
                f"does not have: it has {n_blocks} vision blocks, indices 0..{n_blocks - 1}."
            )
        return idx

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> AdapterConfig:
        d = json.loads(text)
        for k in ("lora_targets", "bottleneck_sites"):
            d[k] = tuple(d[k])
        if isinstance(d["placement"], list):
            d["placement"] = tuple(d["placement"])
        return cls(**d)
