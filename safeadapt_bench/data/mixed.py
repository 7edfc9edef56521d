"""Mixed offline logs: expert, noisy and careless episodes in set proportions (issue 12).

A cost critic learns nothing from logs without a failure: the expert almost never makes an unsafe
step. :class:`MixedLogs` puts several single-policy collections side by side (each a checked
:class:`~safeadapt_bench.data.OfflineDataset`), so an agent can clone the safe behaviour of the
``expert`` and ``noisy`` episodes and fit its cost critic on all of them, the labelled unsafe
manoeuvres of ``careless`` included. The harness builds one from ``settings.log_mix``
(see :func:`parse_log_mix` and :func:`mix_counts`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from safeadapt_bench.data.ids import POLICIES

#: Tolerance on the sum of the proportions.
SUM_TOLERANCE = 1e-6


def parse_log_mix(mix: Mapping[str, Any] | None) -> dict[str, float] | None:
    """Check a ``{policy: proportion}`` mix; returns it as floats (``None`` passes through).

    Raises ``ValueError`` for an unknown policy, a negative or non-numeric proportion, or proportions
    that do not sum to 1.
    """
    if mix is None:
        return None
    if not isinstance(mix, Mapping) or not mix:
        raise ValueError(f"log_mix must map behaviour policies to proportions, e.g. "
                         f"{{expert = 0.5, noisy = 0.3, careless = 0.2}}; got {mix!r}.")
    unknown = sorted(set(mix) - set(POLICIES))
    if unknown:
        raise ValueError(f"log_mix names unknown policies {unknown}; choose among {list(POLICIES)}.")
    out: dict[str, float] = {}
    for k, v in mix.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ValueError(f"log_mix[{k!r}] must be a proportion in [0, 1], got {v!r}.")
        out[str(k)] = float(v)
    total = sum(out.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"log_mix proportions must sum to 1, they sum to {total:g} ({out}); rescale them.")
    return out


def mix_counts(mix: Mapping[str, float], episodes: int) -> dict[str, int]:
    """Episodes per policy for ``episodes`` in all: largest-remainder rounding of ``mix * episodes``.

    Every policy with a positive proportion gets at least one episode when there are enough episodes
    for each of them (otherwise the largest proportions win). Policies with 0 episodes are left out.
    """
    mix = parse_log_mix(mix) or {}
    exact = {k: v * episodes for k, v in mix.items()}
    counts = {k: int(math.floor(x)) for k, x in exact.items()}
    order = sorted(exact, key=lambda k: (-(exact[k] - counts[k]), -mix[k], k))
    for k in order[: episodes - sum(counts.values())]:
        counts[k] += 1
    positive = [k for k in mix if mix[k] > 0]
    if episodes >= len(positive):  # no named policy silently vanishes from a big enough mix
        for k in positive:
            while counts[k] == 0:
                donor = max(counts, key=lambda d: (counts[d], mix[d]))
                counts[donor] -= 1
                counts[k] += 1
    return {k: n for k, n in counts.items() if n > 0}


@dataclass
class MixedLogs:
    """Several single-policy offline datasets used together, in ``parts`` order.

    Attributes:
        parts: ``(policy, OfflineDataset)`` pairs; ``policy`` is the behaviour policy of that part.
        mix: the proportions asked for (for the record), or ``None``.
    """

    parts: list[tuple[str, Any]]
    mix: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("MixedLogs needs at least one (policy, dataset) part.")

    def __len__(self) -> int:
        return sum(len(ds) for _, ds in self.parts)

    @property
    def policies(self) -> list[str]:
        return [p for p, _ in self.parts]

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.parts)

    def split(self, val_fraction: float = 0.1) -> tuple[MixedLogs, MixedLogs | None]:
        """``(train, val)``: each part split as ``OfflineDataset.split`` does (its last episodes held out)."""
        train, val = [], []
        for policy, ds in self.parts:
            tr, va = ds.split(val_fraction)
            train.append((policy, tr))
            if va is not None:
                val.append((policy, va))
        return MixedLogs(train, self.mix), (MixedLogs(val, self.mix) if val else None)

    def summary(self) -> dict[str, Any]:
        """What a record keeps: the mix and, per part, its id, episodes and the behaviour's rates."""
        parts = []
        for policy, ds in self.parts:
            info = getattr(ds, "info", {}) or {}
            parts.append({"policy": policy, "id": getattr(ds, "id", None), "episodes": len(ds),
                          **{k: info.get(k) for k in ("success_rate", "cost_rate", "mean_episode_cost")}})
        return {"type": "MixedLogs", "mix": self.mix, "episodes": len(self), "parts": parts}


def provide_mixed(provide: Any, task: Any, mix: Mapping[str, float], episodes: int, seed: int) -> MixedLogs:
    """:class:`MixedLogs` of ``episodes`` episodes split by ``mix``, each part from the dataset provider
    ``provide(task=, policy=, episodes=, seed=)`` (which returns a ``minari.MinariDataset``, an id or an
    ``OfflineDataset``)."""
    import os

    from safeadapt_bench.data.loader import OfflineDataset, load, wrap

    mix = parse_log_mix(mix) or {}
    parts = []
    for policy, n in mix_counts(mix, episodes).items():
        ds = provide(task=task, policy=policy, episodes=n, seed=seed)
        if isinstance(ds, str | os.PathLike):
            ds = load(str(ds), episodes=n)
        parts.append((policy, ds if isinstance(ds, OfflineDataset) else wrap(ds)))
    return MixedLogs(parts, dict(mix))
