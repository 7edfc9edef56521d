"""Budgets for pre-training and adaptation, and a meter that tells an agent when one is spent."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Budget:
    """A limit on work; every field left as ``None`` is unlimited.

    Attributes:
        env_steps: environment steps (``env.step`` calls) an agent may take while adapting.
        wall_seconds: wall-clock seconds the phase may last.
        updates: gradient updates (or other optimiser steps) for offline pre-training.
    """

    env_steps: int | None = None
    wall_seconds: float | None = None
    updates: int | None = None

    def __post_init__(self) -> None:
        for name in ("env_steps", "wall_seconds", "updates"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Budget.{name} must be >= 0 or None, got {value!r}.")

    @property
    def unlimited(self) -> bool:
        """True when no field limits anything."""
        return self.env_steps is None and self.wall_seconds is None and self.updates is None

    def start(self) -> BudgetMeter:
        """A meter whose clock starts now."""
        return BudgetMeter(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for records."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Budget:
        """Inverse of :meth:`to_dict` (``None`` gives an unlimited budget)."""
        return cls(**(data or {}))


class BudgetMeter:
    """Tracks use of a :class:`Budget`: ``meter.exhausted(env_steps=n)`` in an agent's loop."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.t0 = time.perf_counter()

    @property
    def elapsed(self) -> float:
        """Seconds since the meter started."""
        return time.perf_counter() - self.t0

    def exhausted(self, env_steps: int = 0, updates: int = 0) -> bool:
        """True once any limit is reached by the counts given or by the clock."""
        b = self.budget
        if b.env_steps is not None and env_steps >= b.env_steps:
            return True
        if b.updates is not None and updates >= b.updates:
            return True
        return b.wall_seconds is not None and self.elapsed >= b.wall_seconds
