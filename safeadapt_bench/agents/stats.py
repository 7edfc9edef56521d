"""The per-step safety record the harness keeps for every executed action.

The harness wraps each environment it hands to an agent (and each one it evaluates on) in
:class:`safeadapt_bench.harness.monitor.SafetyMonitor`, which turns every ``env.step`` into one
:class:`StepRecord` and adds it to a :class:`StepStats`. An agent with a safety veto (a shield that
replaces unsafe actions) reports, once per executed action, whether the veto fired by calling
``self.note_veto(fired)`` before the step; agents without one report nothing and get ``vetoed=None``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class StepRecord:
    """One executed action.

    Attributes:
        cost: ``info["cost"]`` of the step (0 when the env gives none).
        safe: ``cost == 0``.
        vetoed: whether the agent's veto replaced the proposed action; ``None`` for agents without one.
    """

    cost: float
    safe: bool
    vetoed: bool | None = None


@dataclass
class StepStats:
    """Running counts over :class:`StepRecord` s.

    Attributes:
        steps: executed actions.
        safe_steps: actions whose step cost was 0.
        cost: summed step cost.
        veto_checked: actions for which the agent reported a veto decision.
        veto_fired: actions the veto replaced.
    """

    steps: int = 0
    safe_steps: int = 0
    cost: float = 0.0
    veto_checked: int = 0
    veto_fired: int = 0

    def add(self, record: StepRecord) -> None:
        """Count one executed action."""
        self.steps += 1
        self.safe_steps += int(record.safe)
        self.cost += float(record.cost)
        if record.vetoed is not None:
            self.veto_checked += 1
            self.veto_fired += int(record.vetoed)

    def merge(self, other: StepStats) -> StepStats:
        """A new :class:`StepStats` holding both counts."""
        return StepStats(self.steps + other.steps, self.safe_steps + other.safe_steps,
                         self.cost + other.cost, self.veto_checked + other.veto_checked,
                         self.veto_fired + other.veto_fired)

    @property
    def safe_ratio(self) -> float | None:
        """Fraction of executed actions that were safe (``None`` before any step)."""
        return self.safe_steps / self.steps if self.steps else None

    @property
    def veto_rate(self) -> float | None:
        """Fraction of vetted actions the veto replaced (``None`` for agents without a veto)."""
        return self.veto_fired / self.veto_checked if self.veto_checked else None

    def to_dict(self) -> dict[str, float | int | None]:
        """Counts plus the two ratios, for records."""
        return {**asdict(self), "safe_ratio": self.safe_ratio, "veto_rate": self.veto_rate}
