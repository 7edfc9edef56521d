"""Offline multi-modal logs (issue 3): collection to Minari datasets, checked loading, torch batches.

```python
from safeadapt_bench.data import collect, load, provide_dataset

collect("SafeAdapt/Lift-v0", episodes=50, policy="expert", seed=0)       # -> safeadapt/lift-expert-v0
ds = load("safeadapt/lift-expert-v0")                                     # checked, lazy
for batch in ds.batches(64): ...                                          # torch tensors
for pairs in ds.contrastive_pairs(64, window=8): ...                      # (observation, state-action window)
```

The data directory is ``$MINARI_DATASETS_PATH`` (Minari's default ``~/.minari/datasets`` otherwise).
Importing this package is light (Minari, torch and robosuite load when used).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from safeadapt_bench.data.collect import CollectSummary, collect, default_workers, episode_seed
from safeadapt_bench.data.ids import (
    POLICIES,
    DatasetCorruptError,
    DatasetNotFoundError,
    DatasetVersionError,
    dataset_id,
    dataset_path,
    datasets_root,
)
from safeadapt_bench.data.loader import SPLITS, Batch, ContrastiveBatch, Episode, OfflineDataset, load, wrap
from safeadapt_bench.data.mixed import MixedLogs, mix_counts, parse_log_mix, provide_mixed

__all__ = [
    "POLICIES", "SPLITS", "Batch", "CollectSummary", "ContrastiveBatch", "DatasetCorruptError",
    "DatasetNotFoundError", "DatasetVersionError", "Episode", "MixedLogs", "OfflineDataset", "collect", "dataset_id",
    "dataset_path", "datasets_root", "episode_seed", "harness_provider", "list_datasets", "load", "mix_counts",
    "parse_log_mix", "provide_dataset", "provide_mixed", "wrap",
]


def provide_dataset(env_id: str | None = None, policy: str = "expert", episodes: int = 50, seed: int = 0, *,
                    task: Any = None, progress: bool = False, workers: int | None = None, **env_kwargs: Any) -> Any:
    """Collect a dataset when missing, reuse it otherwise.

    With ``env_id``: returns the id of a dataset of at least ``episodes`` episodes. An existing
    dataset with the same settings is reused when it has enough episodes (a larger one holds the
    smaller one as its first episodes; :func:`load` with ``episodes=`` takes them); one with fewer is
    recollected at the larger size. One from another env or package version raises
    :class:`DatasetVersionError`. ``env_kwargs`` are those of :func:`collect` (``robot``,
    ``camera_size``, ``obs_mode``, ``categories``, env kwargs). A collection rolls episodes in
    ``workers`` processes (default: every core this process may use from 10 episodes on; the dataset
    is the same).

    With ``task=`` (a harness ``TaskSpec``; the harness's default provider call): see
    :func:`harness_provider`; returns a ``minari.MinariDataset`` of exactly ``episodes`` episodes.
    """
    if task is not None:
        if env_id is not None or env_kwargs:
            raise ValueError("provide_dataset: pass either task= or env_id (with env kwargs), not both.")
        return harness_provider(task, policy, episodes, seed, workers=workers)
    if env_id is None:
        raise ValueError("provide_dataset needs an env_id (e.g. 'SafeAdapt/Lift-v0') or task=.")
    did = dataset_id(env_id, policy, seed=seed, **env_kwargs)
    with _lock(did):  # concurrent cells (pool or Ray workers) wait for one collection instead of repeating it
        force = False
        if dataset_path(did).exists():
            have = load(did)  # raises on a corrupt or foreign-version dataset
            if have.total_episodes >= episodes:
                _warn_other_kernel(did, have.info)
                return did
            force = True
        try:
            collect(env_id, episodes, policy, seed, force=force, progress=progress,
                    workers=default_workers(episodes) if workers is None else workers, **env_kwargs)
        except FileExistsError:  # another process finished the same collection first
            if load(did).total_episodes < episodes:
                raise
    return did


def _warn_other_kernel(did: str, info: dict[str, Any]) -> None:
    """Warn when a reused dataset was collected on another OpenBLAS kernel than this process runs: the
    controller's matrix products round differently there, so a collection here would not reproduce its
    episodes (some drift and end at another step), nor would results trained on it."""
    import warnings

    from safeadapt_bench.harness.records import blas_kernel

    theirs, ours = info.get("blas_kernel"), blas_kernel()
    if theirs and ours and theirs != ours:
        warnings.warn(f"Dataset {did!r} was collected with numpy's OpenBLAS kernel {theirs}, this process runs "
                      f"{ours}: collected here its episodes would differ. Run with OPENBLAS_CORETYPE={theirs} to "
                      "reproduce it, or recollect it (`safeadapt-bench collect ... --force`).", stacklevel=3)


@contextlib.contextmanager
def _lock(did: str) -> Iterator[None]:
    """An exclusive file lock per dataset id under the data directory (POSIX ``flock``)."""
    import fcntl

    locks = datasets_root() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / (did.replace("/", "__") + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def harness_provider(task: Any, policy: str = "expert", episodes: int = 50, seed: int = 0,
                     workers: int | None = None) -> Any:
    """Dataset provider for the harness: a ``minari.MinariDataset`` of the first ``episodes`` episodes.

    ``task`` is a ``safeadapt_bench.harness.suites.TaskSpec``: logs are collected on its train split
    with its source ``robot`` (the robot the logs come from), its camera size and env kwargs, with
    the privileged state added (the scripted policies read it). ``safeadapt_bench.data.wrap(dataset)``
    gives batches and contrastive pairs over it.
    """
    obs_mode = "rgbd+state" if "rgb" in task.obs_mode else "state"
    kwargs: dict[str, Any] = {"robot": task.robot, "obs_mode": obs_mode, **dict(task.env_kwargs)}
    if obs_mode != "state":
        kwargs["camera_size"] = task.camera_size
    did = provide_dataset(task.env_id("train"), policy, episodes, seed, workers=workers, **kwargs)
    return load(did, episodes=episodes).minari


def list_datasets() -> list[dict[str, Any]]:
    """Local datasets in the data directory, one dict each (id, size, episodes, rates, problems)."""
    from safeadapt_bench.data.listing import list_datasets as _list

    return _list()
