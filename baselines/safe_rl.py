"""``safe-rl``: a frozen backbone without adapters, SAC-Lagrangian.

A cost critic ``Q_c`` (fitted offline on the logged costs, then online) and a learned multiplier
``lambda``: the actor minimises ``alpha log pi - Q + lambda Q_c`` and ``lambda`` rises while the
estimated cost rate ``Q_c(s, pi(s))`` is above ``cost_limit``. Pre-training: BC + the offline cost
fit (nothing to align contrastively without adapters).
"""

from __future__ import annotations

from typing import Any, ClassVar

from safeadapt_bench.baselines.common.agent import ReferenceAgent


class SafeRLAgent(ReferenceAgent):
    """Frozen backbone, SAC-Lagrangian (see the module docstring)."""

    FIXED: ClassVar[dict[str, Any]] = dict(adapter=None, train_backbone=False, cost_critic=True, lagrangian=True,
                                           veto=False, contrastive=False)
