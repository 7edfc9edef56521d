"""``adapter``: the same adapters and pre-training as safe-adapter (InfoNCE + BC), without the safety
machinery: no cost critic, no veto, plain SAC."""

from __future__ import annotations

from typing import Any, ClassVar

from safeadapt_bench.baselines.common.agent import ReferenceAgent


class AdapterAgent(ReferenceAgent):
    """Frozen backbone + LoRA adapters, plain SAC (see the module docstring)."""

    FIXED: ClassVar[dict[str, Any]] = dict(train_backbone=False, cost_critic=False, veto=False, lagrangian=False)
