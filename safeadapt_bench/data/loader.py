"""Read offline logs: checked loading, lazy episodes, torch batches and contrastive pairs.

Nothing here reads the whole dataset: episodes are read through ``MinariDataset.iterate_episodes``
a chunk at a time (``chunk_episodes`` episodes, in shuffled order), and batches are drawn from the
chunk in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from safeadapt_bench.data.ids import (
    DATASET_VERSION,
    DatasetCorruptError,
    DatasetNotFoundError,
    DatasetVersionError,
    dataset_path,
)

#: Episode splits of :func:`load`: ``val`` is the last ``val_fraction`` of the episodes, ``train`` the rest.
SPLITS: tuple[str, ...] = ("all", "train", "val")


@dataclass
class Episode:
    """One recorded episode as numpy arrays (``T`` steps; observations have ``T + 1`` entries).

    ``rgb`` is ``(T+1, S, S, 3)`` uint8 and ``depth`` ``(T+1, S, S, 1)`` float32 metres (``None``
    for state-only datasets); ``state`` is ``None`` without the privileged state. ``infos`` holds
    every recorded info array (``T`` entries each), ``costs`` is ``infos["cost"]``.
    """

    index: int
    seed: int | None
    instruction: str
    category: str
    rgb: np.ndarray | None
    depth: np.ndarray | None
    proprio: np.ndarray
    state: np.ndarray | None
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, np.ndarray]
    wrist_rgb: np.ndarray | None = None
    wrist_depth: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def costs(self) -> np.ndarray:
        return self.infos["cost"]

    @property
    def labels(self) -> np.ndarray:
        """The behaviour-cloning targets: the expert's own actions (``infos["expert_action"]``, which
        differ from ``actions`` where the ``noisy`` policy added noise), or ``actions`` in logs
        without them."""
        label = self.infos.get("expert_action")
        return self.actions if label is None else np.asarray(label, dtype=np.float32)

    @property
    def success(self) -> bool:
        """Whether the episode succeeded at some step."""
        return bool(np.any(self.infos["success"]))


def _tensor_fields(obj: Any, device: Any) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = v.to(device) if hasattr(v, "to") else v
    return out


@dataclass
class Batch:
    """A batch of ``B`` steps as torch tensors (images channels-first).

    Attributes:
        rgb: uint8 ``(B, 3, S, S)`` (``None`` for state-only datasets).
        depth: float32 ``(B, 1, S, S)``, metres (``None`` for state-only datasets).
        proprio: float32 ``(B, 30)``.
        state: float32 ``(B, 23)`` privileged state, or ``None``.
        instruction: ``B`` strings.
        action: float32 ``(B, 7)``, the action taken from this observation.
        reward: float32 ``(B,)``.
        cost: float32 ``(B,)``, 0/1 indicator cost of the step.
        done: bool ``(B,)``, the step ended the episode (terminated or truncated).
        terminated: bool ``(B,)``, a true termination (no bootstrapping).
        success: bool ``(B,)``.
        category: int64 ``(B,)``, index into ``OfflineDataset.categories``.
        episode: int64 ``(B,)``, episode index; step: int64 ``(B,)``, step in the episode.
        wrist_rgb, wrist_depth: the wrist camera's images as ``rgb`` / ``depth`` (``None`` without it).
    """

    rgb: Any
    depth: Any
    proprio: Any
    state: Any
    instruction: list[str]
    action: Any
    reward: Any
    cost: Any
    done: Any
    terminated: Any
    success: Any
    category: Any
    episode: Any
    step: Any
    wrist_rgb: Any = None
    wrist_depth: Any = None

    def __len__(self) -> int:
        return len(self.instruction)

    def to(self, device: Any) -> Batch:
        """The batch with every tensor moved to ``device``."""
        return Batch(**_tensor_fields(self, device))


@dataclass
class ContrastiveBatch:
    """``B`` (observation, state-action window) pairs for contrastive alignment.

    Pair ``i`` is the observation at step ``t`` of an episode and the ``W`` steps that follow it:
    ``window_action[i, k]`` is the action at step ``t + k`` and ``window_proprio[i, k]`` /
    ``window_state[i, k]`` the proprioception / privileged state it was taken from (so index 0 is
    the observation's own). Only ``t <= T - W`` are drawn: windows never cross an episode end.

    Attributes:
        rgb, depth, proprio, state, instruction, category: the observation at ``t`` (as in :class:`Batch`).
        window_proprio: float32 ``(B, W, 30)``; window_state: float32 ``(B, W, 23)`` or ``None``;
        window_action: float32 ``(B, W, 7)``; window_cost: float32 ``(B, W)``.
        episode, step: int64 ``(B,)``: where each pair comes from (pairs of one episode are
            positives of each other only if your loss says so).
        wrist_rgb, wrist_depth: the wrist camera's images at ``t`` (``None`` without it).
    """

    rgb: Any
    depth: Any
    proprio: Any
    state: Any
    instruction: list[str]
    category: Any
    window_proprio: Any
    window_state: Any
    window_action: Any
    window_cost: Any
    episode: Any
    step: Any
    wrist_rgb: Any = None
    wrist_depth: Any = None

    def __len__(self) -> int:
        return len(self.instruction)

    def to(self, device: Any) -> ContrastiveBatch:
        """The batch with every tensor moved to ``device``."""
        return ContrastiveBatch(**_tensor_fields(self, device))


@dataclass
class OfflineDataset:
    """A checked SafeAdapt dataset over a ``minari.MinariDataset`` (``.minari``); reads lazily."""

    minari: Any
    info: dict[str, Any] = field(repr=False)

    @property
    def id(self) -> str:
        return self.minari.spec.dataset_id

    @property
    def categories(self) -> list[str]:
        """Category names; ``Batch.category`` and ``infos["category"]`` index into this list."""
        return list(self.info["categories"])

    @property
    def episode_indices(self) -> np.ndarray:
        return np.asarray(self.minari.episode_indices)

    @property
    def total_episodes(self) -> int:
        return len(self.episode_indices)

    def __len__(self) -> int:
        return self.total_episodes

    def subset(self, indices: Sequence[int]) -> OfflineDataset:
        """A view of these episodes (dataset episode indices)."""
        import minari

        idx = np.asarray(indices, dtype=np.int64)
        return OfflineDataset(minari=minari.MinariDataset(self.minari.storage, episode_indices=idx), info=self.info)

    def split(self, val_fraction: float = 0.1) -> tuple[OfflineDataset, OfflineDataset | None]:
        """``(train, val)`` views: the last ``val_fraction`` of the episodes (at least one, when there are
        two or more) are held out; ``val`` is ``None`` when none is."""
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}.")
        idx = self.episode_indices
        n_val = max(1, int(round(len(idx) * val_fraction))) if val_fraction > 0 and len(idx) > 1 else 0
        if not n_val:
            return self, None
        return self.subset(idx[:len(idx) - n_val]), self.subset(idx[len(idx) - n_val:])

    def episodes(self, indices: Sequence[int] | None = None) -> Iterator[Episode]:
        """Episodes by dataset episode index (default: all of this view, in order), read one at a time."""
        idx = self.episode_indices if indices is None else np.asarray(indices, dtype=np.int64)
        try:
            for ep in self.minari.iterate_episodes(idx):
                yield self._episode(ep)
        except (OSError, KeyError) as err:
            raise DatasetCorruptError(f"Dataset {self.id!r} could not be read ({type(err).__name__}: {err}); "
                                      "delete it or recollect it with --force.") from err

    def episode(self, index: int) -> Episode:
        """One episode by dataset episode index."""
        return next(self.episodes([index]))

    def _episode(self, ep: Any) -> Episode:
        o = ep.observations
        rgb = o.get("rgb")  # (T+1, S, S, 3) uint8: datasets are stored in the env's own observation space
        if rgb is not None:
            rgb = np.asarray(rgb, dtype=np.uint8)
        instr = o["instruction"]
        infos = {k: np.asarray(v) for k, v in (ep.infos or {}).items()}
        cat = int(infos["category"][0]) if "category" in infos and len(infos["category"]) else -1
        seed = self._seeds.get(int(ep.id))
        return Episode(index=int(ep.id), seed=seed, instruction=str(instr[0]),
                       category=self.categories[cat] if cat >= 0 else "", rgb=rgb, depth=o.get("depth"),
                       proprio=np.asarray(o["proprio"]), state=o.get("state"), actions=np.asarray(ep.actions),
                       rewards=np.asarray(ep.rewards), terminations=np.asarray(ep.terminations),
                       truncations=np.asarray(ep.truncations), infos=infos,
                       wrist_rgb=None if o.get("wrist_rgb") is None else np.asarray(o["wrist_rgb"], dtype=np.uint8),
                       wrist_depth=o.get("wrist_depth"))

    @property
    def _seeds(self) -> dict[int, int]:
        return dict(enumerate(self.info.get("episode_seeds", [])))

    def _chunks(self, rng: np.random.Generator | None, chunk_episodes: int) -> Iterator[list[Episode]]:
        order = self.episode_indices.copy()
        if rng is not None:
            order = rng.permutation(order)
        for j in range(0, len(order), max(1, int(chunk_episodes))):
            yield list(self.episodes(order[j:j + chunk_episodes]))

    # ------------------------------------------------------------------ batches
    def batches(self, batch_size: int = 64, *, shuffle: bool = True, seed: int = 0, chunk_episodes: int = 8,
                drop_last: bool = False) -> Iterator[Batch]:
        """One pass over every step as :class:`Batch` es.

        With ``shuffle``, episodes are read in a random order, ``chunk_episodes`` at a time, and steps
        are shuffled within what is in memory (at most two chunks). Without it, steps come in order.
        """
        _check_positive(batch_size=batch_size, chunk_episodes=chunk_episodes)
        rng = np.random.default_rng(seed) if shuffle else None
        pool: list[tuple[Episode, int]] = []
        for chunk in self._chunks(rng, chunk_episodes):
            new = [(ep, t) for ep in chunk for t in range(len(ep))]
            if rng is not None:
                new = [new[k] for k in rng.permutation(len(new))]
            pool.extend(new)
            while len(pool) >= batch_size:
                yield self._batch(pool[:batch_size])
                del pool[:batch_size]
        if pool and not drop_last:
            yield self._batch(pool)

    def _batch(self, items: list[tuple[Episode, int]]) -> Batch:
        import torch

        def stack(get, dtype=None):
            arr = np.stack([get(ep, t) for ep, t in items])
            return torch.from_numpy(arr if dtype is None else arr.astype(dtype))

        has_img = items[0][0].rgb is not None
        has_wrist = items[0][0].wrist_rgb is not None
        has_state = items[0][0].state is not None
        info = lambda key, dtype: stack(lambda e, t: e.infos[key][t], dtype)  # noqa: E731
        return Batch(
            rgb=stack(lambda e, t: e.rgb[t]).permute(0, 3, 1, 2).contiguous() if has_img else None,
            depth=stack(lambda e, t: e.depth[t]).permute(0, 3, 1, 2).contiguous() if has_img else None,
            proprio=stack(lambda e, t: e.proprio[t]),
            state=stack(lambda e, t: e.state[t]) if has_state else None,
            instruction=[ep.instruction for ep, _ in items],
            action=stack(lambda e, t: e.actions[t], np.float32),
            reward=stack(lambda e, t: e.rewards[t], np.float32),
            cost=info("cost", np.float32),
            done=stack(lambda e, t: e.terminations[t] or e.truncations[t], np.bool_),
            terminated=stack(lambda e, t: e.terminations[t], np.bool_),
            success=info("success", np.bool_),
            category=info("category", np.int64),
            episode=torch.tensor([ep.index for ep, _ in items], dtype=torch.int64),
            step=torch.tensor([t for _, t in items], dtype=torch.int64),
            wrist_rgb=stack(lambda e, t: e.wrist_rgb[t]).permute(0, 3, 1, 2).contiguous() if has_wrist else None,
            wrist_depth=stack(lambda e, t: e.wrist_depth[t]).permute(0, 3, 1, 2).contiguous() if has_wrist else None,
        )

    def contrastive_pairs(self, batch_size: int = 64, window: int = 8, *, seed: int = 0, chunk_episodes: int = 8,
                          shuffle: bool = True, drop_last: bool = False) -> Iterator[ContrastiveBatch]:
        """One pass of (observation, state-action window) pairs, every valid start step once.

        Episodes shorter than ``window`` give no pair; a ``ValueError`` says so if none does.
        """
        _check_positive(batch_size=batch_size, window=window, chunk_episodes=chunk_episodes)
        rng = np.random.default_rng(seed) if shuffle else None
        pool: list[tuple[Episode, int]] = []
        any_pair = False
        for chunk in self._chunks(rng, chunk_episodes):
            new = [(ep, t) for ep in chunk for t in range(len(ep) - window + 1)]
            any_pair |= bool(new)
            if rng is not None:
                new = [new[k] for k in rng.permutation(len(new))]
            pool.extend(new)
            while len(pool) >= batch_size:
                yield self._pairs(pool[:batch_size], window)
                del pool[:batch_size]
        if pool and not drop_last:
            yield self._pairs(pool, window)
        if not any_pair:
            raise ValueError(f"No episode of {self.id!r} has {window} steps; use a shorter window.")

    def _pairs(self, items: list[tuple[Episode, int]], w: int) -> ContrastiveBatch:
        import torch

        b = self._batch(items)

        def win(get, dtype=np.float32):
            return torch.from_numpy(np.stack([get(ep)[t:t + w] for ep, t in items]).astype(dtype))

        has_state = items[0][0].state is not None
        return ContrastiveBatch(
            rgb=b.rgb, depth=b.depth, proprio=b.proprio, state=b.state, instruction=b.instruction,
            category=b.category, window_proprio=win(lambda e: e.proprio),
            window_state=win(lambda e: e.state) if has_state else None,
            window_action=win(lambda e: e.actions), window_cost=win(lambda e: e.infos["cost"]),
            episode=b.episode, step=b.step, wrist_rgb=b.wrist_rgb, wrist_depth=b.wrist_depth)

    def torch_dataset(self, kind: str = "batches", **kwargs: Any) -> Any:
        """A ``torch.utils.data.IterableDataset`` over :meth:`batches` or :meth:`contrastive_pairs`.

        Use it with ``DataLoader(ds, batch_size=None)``: items are already batches.
        """
        import torch

        if kind not in ("batches", "contrastive_pairs"):
            raise ValueError(f"Unknown kind {kind!r}; choose 'batches' or 'contrastive_pairs'.")
        source = self

        class _Iterable(torch.utils.data.IterableDataset):
            def __iter__(self):
                return getattr(source, kind)(**kwargs)

        return _Iterable()


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")


def check_metadata(info: dict[str, Any] | None, dataset_id: str) -> dict[str, Any]:
    """Check a dataset's ``safeadapt`` metadata against this installation; a clear error otherwise."""
    from gymnasium.envs.registration import registry

    import safeadapt_bench

    hint = "recollect it with `safeadapt-bench collect ... --force`, or load it with check_version=False"
    if not info:
        raise DatasetVersionError(f"Dataset {dataset_id!r} has no safeadapt metadata: it was not written by "
                                  f"`safeadapt-bench collect` (or by an older layout); {hint}.")
    if info.get("layout_version") != DATASET_VERSION:
        raise DatasetVersionError(f"Dataset {dataset_id!r} has layout version {info.get('layout_version')!r}; this "
                                  f"safeadapt-bench reads version {DATASET_VERSION}; {hint}.")
    env_id = info.get("env_id")
    if env_id not in registry:
        raise DatasetVersionError(f"Dataset {dataset_id!r} was recorded on env {env_id!r}, which is not registered "
                                  f"here (another env version?); {hint}.")
    from safeadapt_bench.data.collect import _registered_spec

    now = _registered_spec(env_id)
    if info.get("registered_spec") != now:
        raise DatasetVersionError(f"Dataset {dataset_id!r} was recorded with env spec {info.get('registered_spec')}, "
                                  f"but {env_id} is now {now}; {hint}.")
    pv, ours = str(info.get("package_version", "")), safeadapt_bench.__version__
    if pv.split(".")[:2] != ours.split(".")[:2]:
        raise DatasetVersionError(f"Dataset {dataset_id!r} was recorded by safeadapt-bench {pv or '?'}, this is "
                                  f"{ours} (envs may differ between minor versions); {hint}.")
    return info


def load(dataset_id: str, *, split: str = "all", val_fraction: float = 0.1, episodes: int | None = None,
         check_version: bool = True) -> OfflineDataset:
    """Open a dataset by id (``safeadapt/lift-expert-v0``) from the data directory, checked.

    ``split``: ``all``, ``train`` (all but the last ``val_fraction`` of the episodes) or ``val``.
    ``episodes``: keep only the first ``episodes`` episodes (before the split).
    Raises :class:`DatasetNotFoundError`, :class:`DatasetCorruptError` or :class:`DatasetVersionError`.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {list(SPLITS)}.")
    import minari

    try:
        from minari.dataset.minari_dataset import parse_dataset_id

        parse_dataset_id(dataset_id)
    except ValueError as err:
        raise ValueError(f"Malformed dataset id {dataset_id!r}: ids look like 'safeadapt/lift-expert-v0'.") from err
    path = dataset_path(dataset_id)
    if not path.exists():
        raise DatasetNotFoundError(f"Dataset {dataset_id!r} not found under {path.parent} (set MINARI_DATASETS_PATH "
                                   "to change the data directory); create it with `safeadapt-bench collect` or "
                                   "list what is there with `safeadapt-bench datasets`.")
    try:
        ds = minari.load_dataset(dataset_id)
        n = ds.total_episodes
        if n:  # touch the episode file through Minari (catches truncated or foreign files)
            list(ds.storage.get_episode_metadata([0, n - 1]))
        info = ds.storage.metadata.get("safeadapt")
    except (OSError, KeyError, ValueError, AssertionError, TypeError) as err:
        raise DatasetCorruptError(f"Dataset {dataset_id!r} at {path} is corrupt or incomplete "
                                  f"({type(err).__name__}: {err}); delete it or recollect it with --force.") from err
    if check_version:
        check_metadata(info, dataset_id)
    info = info or {}
    idx = np.asarray(ds.episode_indices)
    if episodes is not None:
        if episodes > len(idx):
            raise ValueError(f"Dataset {dataset_id!r} has {len(idx)} episodes, {episodes} were asked for.")
        idx = idx[:episodes]
    if split != "all":
        n_val = int(round(len(idx) * val_fraction))
        if split == "val" and n_val == 0:
            raise ValueError(f"val_fraction={val_fraction} of {len(idx)} episodes leaves no validation episode.")
        idx = idx[len(idx) - n_val:] if split == "val" else idx[:len(idx) - n_val]
    if len(idx) != ds.total_episodes:
        ds = minari.MinariDataset(ds.storage, episode_indices=idx)
    return OfflineDataset(minari=ds, info=info)


def wrap(dataset: Any, *, check_version: bool = True) -> OfflineDataset:
    """An :class:`OfflineDataset` over a ``minari.MinariDataset`` (e.g. the one ``pretrain`` receives)."""
    if isinstance(dataset, OfflineDataset):
        return dataset
    info = dataset.storage.metadata.get("safeadapt")
    if check_version:
        check_metadata(info, dataset.spec.dataset_id)
    return OfflineDataset(minari=dataset, info=info or {})
