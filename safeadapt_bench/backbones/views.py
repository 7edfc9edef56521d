"""Rendered manipulation views for the backbone's spatial objective: front and wrist images along
scripted grasps, each with where the object is in the image.

The reset-time scenes of :mod:`~safeadapt_bench.backbones.scenes` show the object from the front
camera with the arm parked. A policy also sees the wrist camera, and the arm near and over the
object. :func:`render_views` rolls the scripted ``noisy`` expert on ``SafeAdapt/Lift-v0`` with all
ten categories (held-out ones included, as the captions name them: a web-pretrained backbone has
seen them all; the robot logs never hold them) and keeps every ``every``-th step of each episode:
RGB-D of both cameras, and per camera the object's centre projected into the image, in the
``[-1, 1]`` patch-centre coordinates of :class:`~safeadapt_bench.pooling.SpatialSoftmax`, with a
flag for whether it is in view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from safeadapt_bench.backbones.scenes import CATEGORY_ORDER, save_npz_atomic

#: The cameras of a view set, in order (env names).
VIEW_CAMERAS: tuple[str, ...] = ("front", "wrist")
#: Env seeds of the view sets start here (disjoint from the scene sets and the probe).
VIEWS_SEED_OFFSET = 20_000_000 - 1_000_000


@dataclass
class ViewSet:
    """Frames of scripted grasps, two cameras each.

    Attributes:
        rgb: ``(N, C, S, S, 3)`` uint8, ``C`` cameras in :data:`VIEW_CAMERAS` order.
        depth: ``(N, C, S, S, 1)`` float32, metres.
        points: ``(N, C, 2)`` the object's centre in the image, ``(x, y)`` in ``[-1, 1]`` patch-centre
            coordinates of a ``grid`` x ``grid`` token grid (x to the right, y down).
        visible: ``(N, C)`` whether that point lies in the image, in front of the camera.
        categories: the object category of each frame.
        positions: ``(N, 3)`` the object's position (world frame, metres).
        grid: the token grid ``points`` refer to.
    """

    rgb: np.ndarray
    depth: np.ndarray
    points: np.ndarray
    visible: np.ndarray
    categories: list[str]
    positions: np.ndarray
    grid: int

    def __len__(self) -> int:
        return len(self.categories)

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` atomically."""
        save_npz_atomic(path, rgb=self.rgb, depth=self.depth.astype(np.float16), points=self.points,
                        visible=self.visible, categories=np.array(self.categories), positions=self.positions,
                        grid=self.grid)

    @classmethod
    def load(cls, path: str | Path) -> ViewSet:
        with np.load(path) as z:
            return cls(z["rgb"], z["depth"].astype(np.float32), z["points"], z["visible"],
                       [str(c) for c in z["categories"]], z["positions"], int(z["grid"]))


def pixel_to_grid(pixels: np.ndarray, size: int, grid: int) -> np.ndarray:
    """Pixel ``(row, col)`` (continuous, pixel centres at ``i + 0.5``) -> ``(x, y)`` in the ``[-1, 1]``
    coordinates of patch centres (the first patch's centre is -1, the last one's +1)."""
    patch = size / grid
    rc = (np.asarray(pixels, dtype=np.float64) / patch - 0.5) * 2 / (grid - 1) - 1
    return rc[..., ::-1].astype(np.float32)


def _project(scene: object, camera: str, point: np.ndarray, size: int) -> tuple[np.ndarray, bool]:
    """``point`` (world) as continuous pixel ``(row, col)`` in the env's image (row 0 at the top)."""
    from robosuite.utils.camera_utils import get_camera_transform_matrix

    m = get_camera_transform_matrix(scene.sim, camera, size, size)
    h = m @ np.r_[point, 1.0]
    if h[2] <= 1e-6:
        return np.zeros(2), False
    col, row = h[0] / h[2], h[1] / h[2]  # robosuite's convention: (u, v) with v from the top after its flip
    rc = np.array([row, col])
    return rc, bool(np.all(rc >= 0) and np.all(rc < size))


def render_views(episodes: int, *, seed_offset: int = VIEWS_SEED_OFFSET, camera_size: int = 64, grid: int = 8,
                 every: int = 3, object_colours: str = "fixed", progress: bool = True,
                 cache: str | Path | None = None) -> ViewSet:
    """Roll the ``noisy`` expert for ``episodes`` episodes (category ``i % 10``, seed ``seed_offset + i``)
    and keep every ``every``-th step; ``object_colours="random"`` tints each episode's object (the env's
    option), so that a keypoint fitted on the views cannot find the object by its colour. With ``cache``
    (an ``.npz`` whose name should carry the settings, see :func:`views_cache`), a readable file of the
    same image size is reused, else written."""
    if cache is not None and Path(cache).is_file():
        try:
            views = ViewSet.load(cache)
            if views.rgb.shape[2] == camera_size and views.grid == grid:
                return views
        except Exception:  # noqa: BLE001 - a corrupt cache is rendered again
            pass
    import gymnasium as gym
    from tqdm.auto import tqdm

    import safeadapt_bench  # noqa: F401  (registers the ids)
    from safeadapt_bench.envs.scene import CAMERAS
    from safeadapt_bench.experts import make_policy

    env = gym.make("SafeAdapt/Lift-v0", obs_mode="rgbd+state", camera_size=camera_size, cameras=VIEW_CAMERAS,
                   categories=list(CATEGORY_ORDER), terminate_on_success=True, object_colours=object_colours)
    keys = [("rgb", "depth"), ("wrist_rgb", "wrist_depth")]
    rgb, depth, points, visible, cats, pos = [], [], [], [], [], []
    try:
        for i in tqdm(range(episodes), desc="rendering views", disable=not progress, leave=False):
            policy = make_policy("noisy", env, seed=seed_offset + i)
            obs, info = env.reset(seed=seed_offset + i, options={"category": CATEGORY_ORDER[i % len(CATEGORY_ORDER)]})
            done, t = False, 0
            while not done:
                if t % every == 0:
                    scene = env.unwrapped.scene
                    obj = obs["state"][:3].astype(np.float64)
                    proj = [_project(scene, CAMERAS[c], obj, camera_size) for c in VIEW_CAMERAS]
                    rgb.append(np.stack([obs[k] for k, _ in keys]))
                    depth.append(np.stack([obs[k] for _, k in keys]))
                    points.append(np.stack([pixel_to_grid(p, camera_size, grid) for p, _ in proj]))
                    visible.append([v for _, v in proj])
                    cats.append(info["category"])
                    pos.append(obj)
                obs, _, terminated, truncated, info = env.step(policy(obs))
                done, t = terminated or truncated, t + 1
    finally:
        env.close()
    views = ViewSet(np.stack(rgb), np.stack(depth), np.stack(points).astype(np.float32), np.array(visible, bool),
                    cats, np.stack(pos).astype(np.float32), grid)
    if cache is not None:
        views.save(cache)
    return views


def views_cache(episodes: int, camera_size: int, grid: int, every: int, object_colours: str = "fixed") -> Path:
    """The cache file of a view set: its settings and the render fingerprint in the name."""
    from safeadapt_bench.backbones.scenes import cache_dir, render_fingerprint

    colours = "" if object_colours == "fixed" else f"-{object_colours}"
    return cache_dir() / f"views-{episodes}x{camera_size}px-g{grid}-e{every}{colours}-{render_fingerprint()}.npz"
