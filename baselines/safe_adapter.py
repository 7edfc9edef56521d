"""``safe-adapter``, the proposed method: a frozen backbone with safety adapters.

Pre-training: InfoNCE alignment of the adapter's image embedding with (proprio, action) windows of
the logs, a behaviour-cloning warm start of the actor, an offline fit of the cost critic ``Q_c``.
Adaptation: SAC with ``Q_c`` still learning online. Every executed action, in learning and in
deployment, passes the candidate-sampling veto (``SafeSAC.shield``), reported via ``note_veto``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from safeadapt_bench.baselines.common.agent import ReferenceAgent


class SafeAdapterAgent(ReferenceAgent):
    """Frozen backbone + LoRA adapters + cost critic + veto (see the module docstring)."""

    uses_veto: ClassVar[bool] = True
    FIXED: ClassVar[dict[str, Any]] = dict(train_backbone=False, cost_critic=True, veto=True, lagrangian=False)
