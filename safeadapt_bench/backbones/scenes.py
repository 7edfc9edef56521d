"""Rendered benchmark scenes (RGB, depth, category, object position) for pretraining and the probe.

Scenes come from ``SafeAdapt/Lift-v0`` with all ten categories, right after a seeded reset. Scene
``i`` of a set uses env seed ``offset + i`` and category ``CATEGORY_ORDER[i % 10]``. Pretraining
uses offset ``PRETRAIN_SEED_OFFSET``, the probe ``PROBE_SEED_OFFSET``: the two never share a seed.
With ``distractors=N``, N other categories stand beside the scene's object (its category and position
are the target's), so a probe can ask whether the backbone finds the named object.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from safeadapt_bench.backbones.captions import position_word
from safeadapt_bench.envs.categories import CATEGORIES

CATEGORY_ORDER: tuple[str, ...] = tuple(CATEGORIES)
PRETRAIN_SEED_OFFSET = 0
PROBE_SEED_OFFSET = 10_000_000
#: Probe size per category (500 scenes in all).
PROBE_PER_CATEGORY = 50


def save_npz_atomic(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class SceneSet:
    """A batch of rendered scenes.

    Attributes:
        rgb: ``(N, S, S, 3)`` uint8.
        depth: ``(N, S, S, 1)`` float32, metres.
        categories: the object category of each scene.
        positions: ``(N, 3)`` object position (world frame, metres).
        seeds: the env seed of each scene.
        distractor_categories: the other objects of each scene (``None``: scenes without distractors).
    """

    rgb: np.ndarray
    depth: np.ndarray
    categories: list[str]
    positions: np.ndarray
    seeds: np.ndarray
    distractor_categories: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.categories)

    @property
    def position_words(self) -> list[str]:
        return [position_word(float(y)) for y in self.positions[:, 1]]

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` atomically (a temporary file renamed into place)."""
        save_npz_atomic(
            path,
            rgb=self.rgb,
            depth=self.depth.astype(np.float16),
            categories=np.array(self.categories),
            positions=self.positions,
            seeds=self.seeds,
            **({} if self.distractor_categories is None else
               {"distractors": np.array([",".join(d) for d in self.distractor_categories])}),
        )

    @classmethod
    def load(cls, path: str | Path) -> SceneSet:
        with np.load(path) as z:
            return cls(
                z["rgb"],
                z["depth"].astype(np.float32),
                [str(c) for c in z["categories"]],
                z["positions"],
                z["seeds"],
                [str(d).split(",") for d in z["distractors"]] if "distractors" in z else None,
            )


def render_scenes(
    n: int,
    seed_offset: int,
    *,
    camera_size: int = 64,
    progress: bool = True,
    desc: str = "rendering scenes",
    cache: str | Path | None = None,
    distractors: int = 0,
) -> SceneSet:
    """Render ``n`` scenes (seeds ``seed_offset .. seed_offset + n - 1``, ``distractors`` other objects
    beside each target), optionally cached as npz.

    A cache file that cannot be read or does not match is rendered again and replaced.
    """
    if cache is not None and Path(cache).is_file():
        try:
            scenes = SceneSet.load(cache)
        except Exception:  # noqa: BLE001 - a corrupt cache is re-rendered
            scenes = None
        if (
            scenes is not None
            and len(scenes) == n
            and int(scenes.seeds[0]) == seed_offset
            and scenes.rgb.shape[1] == camera_size
            and len((scenes.distractor_categories or [[]])[0]) == distractors
        ):
            return scenes
    import gymnasium as gym
    from tqdm.auto import tqdm

    import safeadapt_bench  # noqa: F401  (registers the ids)

    env = gym.make("SafeAdapt/Lift-v0", obs_mode="rgbd+state", camera_size=camera_size, categories=list(CATEGORY_ORDER),
                   distractors=distractors)
    rgb = np.zeros((n, camera_size, camera_size, 3), np.uint8)
    depth = np.zeros((n, camera_size, camera_size, 1), np.float32)
    pos = np.zeros((n, 3), np.float32)
    cats, others = [], []
    try:
        for i in tqdm(range(n), desc=desc, disable=not progress, leave=False):
            cat = CATEGORY_ORDER[i % len(CATEGORY_ORDER)]
            obs, info = env.reset(seed=seed_offset + i, options={"category": cat})
            rgb[i], depth[i], pos[i] = obs["rgb"], obs["depth"], obs["state"][:3]
            cats.append(info["category"])
            others.append(info["distractor_categories"])
    finally:
        env.close()
    scenes = SceneSet(rgb, depth, cats, pos, np.arange(seed_offset, seed_offset + n), others if distractors else None)
    if cache is not None:
        scenes.save(cache)
    return scenes


#: Environment variable naming the cache directory (default ``~/.cache/safeadapt-bench``).
CACHE_ENV_VAR = "SAFEADAPT_CACHE"


def cache_dir() -> Path:
    """Where rendered scene sets are cached: ``$SAFEADAPT_CACHE`` or ``~/.cache/safeadapt-bench``."""
    root = os.environ.get(CACHE_ENV_VAR)
    return Path(root) if root else Path.home() / ".cache" / "safeadapt-bench"


def render_fingerprint() -> str:
    """A short hash of everything that shapes a rendered scene (package versions, camera, render settings)."""
    import mujoco
    import robosuite

    import safeadapt_bench
    from safeadapt_bench.envs import light_meshes, scene

    parts = (
        safeadapt_bench.__version__, mujoco.__version__, robosuite.__version__, scene.CAMERA_POS.tolist(),
        scene.CAMERA_TARGET.tolist(), scene.OFFSCREEN_SAMPLES, scene.RENDER_REFLECTIONS,
        light_meshes.FACE_FRACTION, light_meshes.MIN_FACES, light_meshes.simplifier_version(),
    )
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:12]


@lru_cache(maxsize=2)
def probe_scenes(camera_size: int = 64, per_category: int = PROBE_PER_CATEGORY, distractors: int = 0) -> SceneSet:
    """The fixed probe set (seeds from ``PROBE_SEED_OFFSET``; ``distractors`` beside each target):
    rendered once, then read from :func:`cache_dir` (the file name carries :func:`render_fingerprint`)."""
    n = per_category * len(CATEGORY_ORDER)
    among = f"-d{distractors}" if distractors else ""
    cache = cache_dir() / f"probe-{n}x{camera_size}px{among}-{render_fingerprint()}.npz"
    return render_scenes(n, PROBE_SEED_OFFSET, camera_size=camera_size, desc="rendering probe scenes", cache=cache,
                         distractors=distractors)
