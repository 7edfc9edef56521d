"""Benchmarks printed by ``safeadapt-bench perf``: each figure beside its reference, as a ratio.

A section is a module here with ``run(quick: bool) -> list[Measurement]``; list it in ``SECTIONS``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

#: Benchmark sections, by module name in ``safeadapt_bench.perf``.
SECTIONS: tuple[str, ...] = (
    "env",
    "backbone",
    "data",
    "agents",
)


@dataclass
class Measurement:
    """One benchmark figure, optionally beside a reference figure.

    Attributes:
        section: the section that measured it.
        name: what was measured, e.g. ``"wrapped env steps/s (no camera)"``.
        value: the median figure.
        unit: its unit.
        reference_name: what it is compared against, if anything.
        reference: the reference figure, in the same unit.
        target: the target, in words (``">= 0.95x"``), if one is set.
    """

    section: str
    name: str
    value: float
    unit: str
    reference_name: str = ""
    reference: float | None = None
    target: str = ""

    @property
    def ratio(self) -> float | None:
        """``value / reference``, or None without a reference."""
        if self.reference in (None, 0):
            return None
        return self.value / self.reference

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
