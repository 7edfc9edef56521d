"""Logged frames as tensors, with the frozen part of the image path computed once and cached on disk.

Pre-training touches every logged frame thousands of times. What does not train need not be run more
than once: :func:`logged_frames` runs the policy extractor's frozen part
(:meth:`~safeadapt_bench.features.BackboneExtractor.frozen_tokens`: the whole vision tower for a
frozen backbone, the blocks below the first adapted block for adapters) over every frame of a
dataset once, and keeps the result in ``$SAFEADAPT_CACHE/frames/<fingerprint>.pt``. The
fingerprint covers the dataset (id, episode indices and seeds, step count), the frozen weights
(a hash of their bytes), the cut point, the cameras and the versions of torch and this package,
so a cache from another dataset or backbone is never reused: it is recomputed. When nothing of the
image path is frozen (full fine-tuning) the raw images are kept instead and nothing is cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from safeadapt_bench.features import CAMERA_KEYS, TEXT_KEY, BackboneExtractor

#: Frames pushed through the frozen part at once.
CHUNK = 256


@dataclass
class LoggedFrames:
    """Every step of some logged episodes: ``N`` frames, in episode order.

    Attributes:
        tokens: per camera, the frozen part's output ``(N, L, width)`` (empty when nothing is frozen).
        obs: the policy's other observation entries (instruction token ids, proprio, ...), and the raw
            images when ``tokens`` is empty.
        actions: ``(N, act_dim)`` as executed; labels: the behaviour-cloning targets (the expert's own
            actions, ``Episode.labels``); costs: ``(N,)`` 0/1 step costs; episode: ``(N,)`` episode index;
            step: ``(N,)`` step in the episode.
        fingerprint: the cache key (``""`` when uncached).
        from_cache: whether the tokens were read from the cache.
        source: ``(N,)`` index into ``sources`` of each frame's behaviour policy (``None``: unknown).
        sources: behaviour-policy names (``"expert"``, ``"noisy"``, ``"careless"``).
        rewards: ``(N,)`` the logged rewards (``None`` for frames built without them).
        variants: per camera, the frozen part's output for ``K`` recoloured copies of every frame,
            ``(K, N, L, width)`` (``None``: no colour augmentation; see :func:`recoloured`).
        calibration: the extractor's camera calibration when the frames were read (object points): frames
            without cached tokens are back-projected through it, whatever robot the policy acts on now.
    """

    tokens: dict[str, torch.Tensor]
    obs: dict[str, torch.Tensor]
    actions: torch.Tensor
    labels: torch.Tensor
    costs: torch.Tensor
    episode: torch.Tensor
    step: torch.Tensor
    fingerprint: str = ""
    from_cache: bool = False
    source: torch.Tensor | None = None
    sources: tuple[str, ...] = ()
    rewards: torch.Tensor | None = None
    variants: dict[str, torch.Tensor] | None = None
    calibration: dict | None = None

    def __len__(self) -> int:
        return len(self.actions)

    def select(self, idx: torch.Tensor, variant: torch.Tensor | None = None
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(tokens, obs)`` of the frames at ``idx``; ``variant`` (``(B,)``, 0 = the original, ``j`` = the
        ``j``-th recoloured copy) picks each frame's colour version."""
        tokens = {k: v[idx] for k, v in self.tokens.items()}
        if variant is not None and self.variants:
            pick = variant.to(idx.device) > 0
            for k in tokens:
                tokens[k][pick] = self.variants[k][variant[pick] - 1, idx[pick]].to(tokens[k].device)
        return tokens, {k: v[idx] for k, v in self.obs.items()}

    def draw_variants(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """``n`` colour versions drawn uniformly (the original or a copy); ``None`` without copies."""
        if not self.variants:
            return None
        copies = next(iter(self.variants.values())).shape[0]
        return torch.randint(copies + 1, (n,), generator=generator)

    def features(self, extractor: Any, idx: torch.Tensor, with_embedding: bool = False,
                 variant: torch.Tensor | None = None) -> Any:
        """``extractor``'s features of the frames at ``idx`` (``BackboneExtractor.features_from_tokens``),
        from the cached frozen tokens when this set holds them, else through the whole image path;
        ``variant`` as in :meth:`select`."""
        tokens, obs = self.select(idx, variant)
        if not self.tokens:
            with extractor.calibrated(self.calibration):
                tokens = extractor.frozen_tokens(obs)
        return extractor.features_from_tokens(tokens, obs, with_embedding=with_embedding)

    def window_starts(self, window: int) -> torch.Tensor:
        """Frames from which ``window`` steps stay inside their episode."""
        n = len(self)
        if n < window:
            return torch.zeros(0, dtype=torch.long)
        starts = torch.arange(n - window + 1)
        same = self.episode[starts] == self.episode[starts + window - 1]
        return starts[same]

    def windows(self, starts: torch.Tensor, window: int, values: torch.Tensor) -> torch.Tensor:
        """``values[starts + k]`` for ``k < window``: ``(B, window, ...)``."""
        return values[starts[:, None] + torch.arange(window)[None]]


def cache_dir() -> Path:
    """Where frame caches live: ``$SAFEADAPT_CACHE/frames`` (default ``~/.cache/safeadapt-bench``)."""
    root = os.environ.get("SAFEADAPT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "safeadapt-bench")
    return Path(root) / "frames"


def frozen_weights_digest(extractor: BackboneExtractor, start: int) -> str:
    """SHA-1 of the weights that the frozen part (patch embedding and blocks ``0:start``) computes with."""
    v = extractor.backbone.clip.visual
    h = hashlib.sha1()
    modules = [("conv1", v.conv1), ("ln_pre", v.ln_pre)]
    modules += [(f"block{i}", b) for i, b in enumerate(extractor.backbone.blocks[:start])]
    tensors = [("class_embedding", v.class_embedding), ("positional_embedding", v.positional_embedding)]
    tensors += [(f"{name}.{k}", t) for name, m in modules for k, t in m.state_dict().items()]
    for name, t in tensors:
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fingerprint(dataset: Any, extractor: BackboneExtractor, start: int) -> str:
    """The cache key of ``dataset``'s frames through ``extractor``'s frozen part (see the module docstring)."""
    import safeadapt_bench

    info = dataset.info
    key = {
        "dataset": dataset.id,
        "episodes": [int(i) for i in dataset.episode_indices],
        "episode_seeds": info.get("episode_seeds"),
        "steps": int(dataset.minari.total_steps),
        "collected": info.get("collect_seconds"),
        "weights": frozen_weights_digest(extractor, start),
        "start": start,
        "cameras": list(extractor.cameras),
        "pool_tokens": extractor.pool_tokens if extractor.pools else None,
        "depth": extractor.use_depth,
        "keypoint_depth": extractor.keypoint_depth,
        "object_points": extractor.calibration and {
            "table_z": extractor.calibration["table_z"],
            "cameras": {k: str(v) for k, v in extractor.calibration["cameras"].items()},
            "cloud": "count, sum, top"},  # what patch_clouds keeps per patch
        "torch": torch.__version__,
        "package": safeadapt_bench.__version__,
    }
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _episode_arrays(dataset: Any, keys: list[str], tokenize: Callable[[str], np.ndarray]) -> dict[str, Any]:
    """Observations (frames ``0..T-1``), actions and costs of every episode, concatenated."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (*keys, "action", "label", "cost", "reward", "episode",
                                                          "step")}
    for ep in dataset.episodes():
        n = len(ep)
        for k in keys:
            if k == TEXT_KEY:
                cols[k].append(np.repeat(tokenize(ep.instruction)[None], n, 0))
                continue
            value = getattr(ep, k, None)
            if value is None:
                raise ValueError(f"The offline logs {dataset.id!r} have no {k!r} but the policy reads it; collect "
                                 "them with the same cameras and obs_mode as the task.")
            cols[k].append(np.asarray(value[:n]))
        cols["action"].append(np.asarray(ep.actions, dtype=np.float32))
        cols["label"].append(np.asarray(ep.labels, dtype=np.float32))
        cols["cost"].append(np.asarray(ep.costs, dtype=np.float32))
        cols["reward"].append(np.asarray(ep.rewards, dtype=np.float32))
        cols["episode"].append(np.full(n, ep.index))
        cols["step"].append(np.arange(n))
    if not cols["action"]:
        raise ValueError(f"The offline logs {dataset.id!r} have no episode.")
    return {k: np.concatenate(v) for k, v in cols.items()}


def _to_policy_tensor(key: str, value: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(value))
    if t.dim() == 4 and t.shape[-1] in (1, 3):  # images: channels first, as SB3 stores them
        t = t.permute(0, 3, 1, 2).contiguous()
    return t


def _compute_tokens(extractor: BackboneExtractor, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    parts: dict[str, list[torch.Tensor]] = {}
    device = extractor.extra_mean.device
    n = len(next(iter(obs.values())))
    with torch.no_grad():
        for i in range(0, n, CHUNK):
            chunk = {k: v[i:i + CHUNK].to(device) for k, v in obs.items()}
            for cam, t in extractor.frozen_tokens(chunk).items():
                parts.setdefault(cam, []).append(t.cpu())
    return {c: torch.cat(v) for c, v in parts.items()}


def _read_cache(path: Path, key: str) -> dict[str, torch.Tensor] | None:
    try:
        blob = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        return None  # missing or corrupt: recompute
    if not isinstance(blob, dict) or blob.get("fingerprint") != key:
        return None
    return blob["tokens"]


def _write_cache(path: Path, key: str, tokens: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="partial-", suffix=".pt.tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save({"fingerprint": key, "tokens": tokens}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def recoloured(images: dict[str, torch.Tensor], episode: torch.Tensor, copy: int, seed: int = 0
               ) -> dict[str, torch.Tensor]:
    """``images`` (channels-first) with every RGB entry's hue shifted (torchvision's ``adjust_hue``), one
    shift per episode for all its frames and cameras, drawn uniformly from the whole colour wheel with
    ``(seed, copy)``; depth entries are returned unchanged."""
    from torchvision.transforms.v2.functional import adjust_hue

    eps, inverse = torch.unique(episode, return_inverse=True)
    shifts = np.random.default_rng([seed, copy]).uniform(-0.5, 0.5, len(eps))
    out = dict(images)
    for key in [k for k in images if k.endswith("rgb")]:
        rgb = images[key].clone()
        for e in range(len(eps)):
            rows = inverse == e
            rgb[rows] = adjust_hue(images[key][rows], float(shifts[e]))
        out[key] = rgb
    return out


def _cached(key: str, compute: Callable[[], dict[str, torch.Tensor]], use_cache: bool
            ) -> tuple[dict[str, torch.Tensor], bool]:
    """``(tensors, from_cache)``: the cache file of ``key`` when it holds them, else ``compute()`` (written
    back when ``use_cache``)."""
    path = cache_dir() / f"{key}.pt"
    cached = _read_cache(path, key) if use_cache else None
    if cached is not None:
        return cached, True
    out = compute()
    if use_cache:
        _write_cache(path, key, out)
    return out, False


def _colour_variants(extractor: BackboneExtractor, images: dict[str, torch.Tensor], episode: torch.Tensor,
                     copies: int) -> dict[str, torch.Tensor]:
    """Per camera ``(copies, N, L, width)``: the frozen part over :func:`recoloured` copies (seed 0)."""
    per = [_compute_tokens(extractor, recoloured(images, episode, j)) for j in range(copies)]
    return {cam: torch.stack([p[cam] for p in per]) for cam in per[0]}


def logged_frames(dataset: Any, extractor: BackboneExtractor, obs_keys: list[str],
                  tokenize: Callable[[str], np.ndarray], *, use_cache: bool = True,
                  colour_copies: int = 0) -> LoggedFrames:
    """Every step of ``dataset`` (an ``OfflineDataset``) as :class:`LoggedFrames` for ``extractor``.

    ``obs_keys`` are the policy's observation entries; ``tokenize(text)`` gives instruction token ids;
    ``colour_copies`` > 0 adds that many :func:`recoloured` copies of every frame's frozen tokens (needs a
    frozen part).
    """
    image_keys = [k for c in extractor.cameras for k in CAMERA_KEYS[c]]
    arrays = _episode_arrays(dataset, list(obs_keys), tokenize)
    obs = {k: _to_policy_tensor(k, arrays[k]) for k in obs_keys}
    start = extractor.frozen_start()
    tokens: dict[str, torch.Tensor] = {}
    variants: dict[str, torch.Tensor] | None = None
    key, hit = "", False
    if start is not None:
        key = fingerprint(dataset, extractor, start)
        images = {k: obs[k] for k in image_keys}
        if extractor.object_points:  # the wrist camera's pose comes from proprio
            images["proprio"] = obs["proprio"]
        tokens, hit = _cached(key, lambda: _compute_tokens(extractor, images), use_cache)
        if colour_copies:
            episode = torch.from_numpy(arrays["episode"])
            variants, _ = _cached(f"{key}-hue{colour_copies}",
                                  lambda: _colour_variants(extractor, images, episode, colour_copies), use_cache)
        obs = {k: v for k, v in obs.items() if k not in image_keys}
    elif colour_copies:
        raise ValueError("colour_copies needs a frozen part of the image path to cache (not full fine-tuning).")
    return LoggedFrames(tokens=tokens, obs=obs, actions=torch.from_numpy(arrays["action"]),
                        labels=torch.from_numpy(arrays["label"]),
                        costs=torch.from_numpy(arrays["cost"]), episode=torch.from_numpy(arrays["episode"]),
                        step=torch.from_numpy(arrays["step"]), fingerprint=key, from_cache=hit,
                        rewards=torch.from_numpy(arrays["reward"]), variants=variants,
                        calibration=extractor.calibration)


def discounted_returns(frames: LoggedFrames, gamma: float) -> torch.Tensor:
    """``(N,)`` each frame's discounted return to the end of its logged episode, ``sum_k gamma^k r_{t+k}``
    (nothing after a terminal step; a truncated episode's tail is cut), on the CPU."""
    if frames.rewards is None:
        raise ValueError("These logged frames hold no rewards; build them with logged_frames().")
    rewards = frames.rewards.detach().cpu().double().numpy()
    last = np.append(np.diff(frames.episode.cpu().numpy()) != 0, True)  # each episode's last frame
    out = np.zeros_like(rewards)
    running = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        running = rewards[i] + gamma * (0.0 if last[i] else running)
        out[i] = running
    return torch.from_numpy(out).float()


def tag_source(frames: LoggedFrames, policy: str | None) -> LoggedFrames:
    """``frames`` with every frame tagged as coming from behaviour ``policy`` (``None``: left untagged)."""
    if policy:
        frames.source, frames.sources = torch.zeros(len(frames), dtype=torch.long), (str(policy),)
    return frames


def concat_frames(parts: list[LoggedFrames]) -> LoggedFrames:
    """One :class:`LoggedFrames` of several (e.g. the parts of ``MixedLogs``), in order.

    Episode indices are offset per part so that no window crosses from one part into the next;
    source tags are merged (untagged parts are tagged ``"unknown"``).
    """
    if len(parts) == 1:
        return parts[0]
    names: list[str] = []
    episodes, sources = [], []
    offset = 0
    for p in parts:
        episodes.append(p.episode + offset)
        offset = int(episodes[-1].max()) + 1 if len(p) else offset
        local = p.sources if p.source is not None else ("unknown",)
        for n in local:
            if n not in names:
                names.append(n)
        codes = torch.tensor([names.index(n) for n in local], dtype=torch.long)
        own = p.source if p.source is not None else torch.zeros(len(p), dtype=torch.long)
        sources.append(codes[own])
    cat = lambda get: torch.cat([get(p) for p in parts])  # noqa: E731
    return LoggedFrames(
        tokens={k: cat(lambda p, k=k: p.tokens[k]) for k in parts[0].tokens},
        obs={k: cat(lambda p, k=k: p.obs[k]) for k in parts[0].obs},
        actions=cat(lambda p: p.actions), labels=cat(lambda p: p.labels), costs=cat(lambda p: p.costs),
        episode=torch.cat(episodes), step=cat(lambda p: p.step),
        rewards=cat(lambda p: p.rewards) if all(p.rewards is not None for p in parts) else None,
        fingerprint="+".join(p.fingerprint for p in parts) if all(p.fingerprint for p in parts) else "",
        from_cache=all(p.from_cache for p in parts), source=torch.cat(sources), sources=tuple(names),
        calibration=parts[0].calibration,
        variants={k: torch.cat([p.variants[k] for p in parts], 1) for k in parts[0].variants}
        if all(p.variants for p in parts) else None)
