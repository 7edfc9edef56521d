"""``full-finetune``: the safe-adapter pipeline with every backbone weight trainable and no cost critic.

Pre-training: InfoNCE (now moving the whole vision tower) and behaviour cloning; adaptation: SAC whose
actor loss also updates the backbone. No adapters, no cost critic, no veto.
"""

from __future__ import annotations

from typing import Any, ClassVar

from safeadapt_bench.baselines.common.agent import ReferenceAgent


class FullFinetuneAgent(ReferenceAgent):
    """Trainable backbone, plain SAC (see the module docstring)."""

    FIXED: ClassVar[dict[str, Any]] = dict(adapter=None, train_backbone=True, cost_critic=False, veto=False,
                                           lagrangian=False)
