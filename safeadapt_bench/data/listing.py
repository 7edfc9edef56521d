"""List the local datasets with their size, episodes, success rate and cost rate (metadata only)."""

from __future__ import annotations

import re
import warnings
from typing import Any

from safeadapt_bench.data.ids import datasets_root


def _size_mb(path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def list_datasets() -> list[dict[str, Any]]:
    """One dict per local dataset (``minari.list_local_datasets``), SafeAdapt's and others'.

    Keys: ``id``, ``size_mb``, ``mb_per_episode``, ``episodes``, ``steps``, ``env_id``, ``policy``, ``seed``,
    ``success_rate``, ``cost_rate``, ``mean_episode_cost`` (``None`` where unknown) and ``problem``
    (``""``, or why the dataset cannot be used). Reads only metadata files.
    """
    import minari

    from safeadapt_bench.data.ids import DatasetVersionError
    from safeadapt_bench.data.loader import check_metadata

    root = datasets_root()
    if not root.exists():
        return []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = minari.list_local_datasets()
    rows: list[dict[str, Any]] = []
    for did, meta in found.items():
        info = meta.get("safeadapt") or {}
        try:
            check_metadata(info, did)
            problem = ""
        except DatasetVersionError as err:
            problem = str(err).split(";")[0]
        size, episodes = _size_mb(root / did), meta.get("total_episodes")
        rows.append({
            "id": did,
            "size_mb": size,
            "mb_per_episode": size / episodes if episodes else None,
            "episodes": episodes,
            "steps": meta.get("total_steps"),
            "env_id": info.get("env_id"),
            "policy": info.get("policy"),
            "seed": info.get("seed"),
            "success_rate": info.get("success_rate"),
            "cost_rate": info.get("cost_rate"),
            "mean_episode_cost": info.get("mean_episode_cost"),
            "problem": problem,
        })
    for w in caught:  # Minari warns about and skips directories it cannot read
        m = re.match(r"Misconfigured dataset named (\S+): (.*)", str(w.message))
        if m:
            rows.append({"id": m.group(1), "size_mb": _size_mb(root / m.group(1)),
                         "mb_per_episode": None, "episodes": None, "steps": None,
                         "env_id": None, "policy": None, "seed": None, "success_rate": None, "cost_rate": None,
                         "mean_episode_cost": None, "problem": f"corrupt: {m.group(2)}"})
    return sorted(rows, key=lambda r: r["id"])
