"""Collect offline logs: roll a scripted policy in a SafeAdapt env and write a Minari dataset.

Layout of a recorded episode of ``T`` steps (Minari's HDF5 format, written with
``minari.create_dataset_from_buffers`` and ``MinariDataset.update_dataset_from_buffer``, one episode
at a time so memory stays at one episode):

- ``observations`` (``T + 1`` entries, the reset observation first): the env's observation dict,
  in the env's own observation space, so ``minari.load_dataset(id)`` returns ``rgb`` as
  ``(T+1, S, S, 3)`` uint8. Image-like keys (every uint8 ``(H, W, 3)`` key such as ``rgb`` and
  ``wrist_rgb``, and every float32 ``(H, W, 1)`` key such as ``depth`` and ``wrist_depth``) are
  written here rather than by Minari, losslessly and compressed (:func:`write_image_observations`):
  images of at least 32x32 as one PNG per frame, the form Minari 0.5.3 decodes for image spaces
  (it opens each frame with PIL, which reads PNG as well as the JPEG it writes itself); smaller
  images and depth as plain HDF5 arrays with the shuffle and gzip filters, which h5py undoes on read.
  Minari's own writer would JPEG-encode every uint8 image (lossy). ``proprio``, ``state`` and
  ``instruction`` (a ``spaces.Text``, which Minari 0.5.3 serialises) are written by Minari.
- ``actions`` (``T``): the float32 action sent to ``env.step`` (clipped to [-1, 1], as the env would).
- ``rewards``, ``terminations``, ``truncations`` (``T``).
- ``infos`` (``T`` entries, aligned with the actions: entry ``t`` is the info of step ``t``): ``cost``,
  ``cost_<term>`` and ``raw_<term>`` for every term of ``COST_TERMS``, ``reward_<part>``, ``success``,
  ``physics_unstable`` and ``category`` as an index into ``metadata["safeadapt"]["categories"]``
  (Minari 0.5.3's HDF5 infos return strings as bytes, so the index is the portable form), and
  ``expert_action``: the scripted expert's own action at that step (equal to ``actions`` except for
  the noise of the ``noisy`` policy), the behaviour-cloning label.

The dataset metadata (``dataset.storage.metadata["safeadapt"]``) records the env id and kwargs, the
registered env spec, ``safeadapt_bench.__version__``, the layout version, policy, seed, episode seeds,
numpy's OpenBLAS kernel (``blas_kernel``) and summary statistics. The robot's controller multiplies matrices
with numpy, and OpenBLAS kernels round differently (``OPENBLAS_CORETYPE`` picks one): a collection is
reproducible, serial or in workers alike, on the same kernel only (on another, some episodes drift and end
differently). The dataset is written in a hidden staging directory and renamed into place
at the end, so an interrupted collection leaves nothing under the final id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safeadapt_bench.data.ids import (
    COLLECT_OBS_MODES,
    DATA_ENV_VAR,
    DATASET_VERSION,
    NAMESPACE,
    check_policy,
    dataset_id,
    dataset_path,
    datasets_root,
)

#: A policy factory ``(name, env, seed) -> policy``; the default is ``safeadapt_bench.experts.make_policy``.
PolicyFactory = Callable[..., Callable[[dict], np.ndarray]]


@dataclass
class CollectSummary:
    """What a collection wrote and how fast.

    Attributes:
        dataset_id: the Minari id written.
        path: its directory.
        episodes: episodes recorded.
        steps: env steps recorded.
        seconds: wall time of the whole collection (resets, policy, env, recording, writing).
        steps_per_second: ``steps / seconds``.
        env_steps_per_second: steps per second of the env and policy alone (resets, policy calls and
            ``env.step``, timed inside the same run) in one process: the env's own speed on this machine.
        success_rate: fraction of episodes that succeeded at some step.
        cost_rate: fraction of steps with ``cost > 0``.
        mean_episode_cost: mean summed cost per episode.
        mean_return: mean undiscounted return per episode.
        workers: processes that rolled the episodes.
    """

    dataset_id: str
    path: str
    episodes: int
    steps: int
    seconds: float
    steps_per_second: float
    env_steps_per_second: float
    success_rate: float
    cost_rate: float
    mean_episode_cost: float
    mean_return: float
    workers: int = 1

    @property
    def overhead_ratio(self) -> float:
        """Collection speed / env-alone speed of one process (1.0 = no recording overhead with one
        worker; up to ``workers`` with several)."""
        return self.steps_per_second / self.env_steps_per_second if self.env_steps_per_second else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "overhead_ratio": self.overhead_ratio}


def episode_seed(seed: int, index: int) -> int:
    """Reset seed of episode ``index`` of a collection with ``seed`` (prefix-stable in ``index``)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0])


#: gzip level of the compressed arrays (depth, images below 32 px); 4 is within 3% of level 9's size here.
GZIP_LEVEL = 4


def image_like_keys(space: Any) -> dict[str, str]:
    """Observation key -> ``"image"`` (uint8 ``(H, W, 3)``) or ``"depth"`` (float32 ``(H, W, 1)``)."""
    out = {}
    for key, sub in space.spaces.items():
        shape, dtype = getattr(sub, "shape", None) or (), getattr(sub, "dtype", None)
        if len(shape) == 3 and shape[2] == 3 and dtype == np.uint8:
            out[key] = "image"
        elif len(shape) == 3 and shape[2] == 1 and dtype == np.float32:
            out[key] = "depth"
    return out


def _png(frame: np.ndarray) -> np.ndarray:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def write_image_observations(hdf5_path: Path, episode_index: int, space: Any,
                             frames: dict[str, list[np.ndarray]]) -> dict[str, str]:
    """Add image-like observations to episode ``episode_index`` of a Minari HDF5 file; returns key -> storage.

    Storage is ``"png"`` (images Minari treats as images: one PNG per frame, a variable-length uint8
    dataset, which Minari 0.5.3 decodes with PIL) or ``"gzip"`` (shuffle + gzip filters).
    """
    import h5py
    from minari.dataset.minari_storage import is_image_space

    used = {}
    with h5py.File(hdf5_path, "a") as f:
        group = f[f"episode_{episode_index}/observations"]
        for key, values in frames.items():
            if is_image_space(space[key]):
                data = np.empty(len(values), dtype=object)
                data[:] = [_png(v) for v in values]
                group.create_dataset(key, data=data, dtype=h5py.vlen_dtype(np.uint8))
                used[key] = "png"
            else:
                group.create_dataset(key, data=np.stack(values), chunks=True, shuffle=True, compression="gzip",
                                     compression_opts=GZIP_LEVEL)
                used[key] = "gzip"
    return used


class _EpisodeRecorder:
    """Per-episode lists of the recorded fields; ``buffer()`` turns them into a Minari EpisodeBuffer."""

    def __init__(self, obs: dict[str, Any], categories: list[str], info_keys: list[str]):
        self.obs: dict[str, list] = {k: [] for k in obs}  # every key; buffer() leaves out the image-like ones
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.terminations: list[bool] = []
        self.truncations: list[bool] = []
        self.infos: dict[str, list] = {k: [] for k in info_keys}
        self._cat = {c: i for i, c in enumerate(categories)}
        self.add_obs(obs)

    def add_obs(self, obs: dict[str, Any]) -> None:
        for k, v in obs.items():
            self.obs[k].append(v)

    def add_step(self, obs, action, reward, terminated, truncated, info) -> None:
        self.add_obs(obs)
        self.actions.append(action)
        self.rewards.append(float(reward))
        self.terminations.append(bool(terminated))
        self.truncations.append(bool(truncated))
        for k, lst in self.infos.items():
            lst.append(self._cat[info[k]] if k == "category" else info[k])

    @property
    def info_keys(self) -> list[str]:
        return list(self.infos)

    def buffer(self, episode_index: int, seed: int, skip: Any = ()):
        """A Minari ``EpisodeBuffer`` of the episode, without the observation keys in ``skip``."""
        from minari.data_collector import EpisodeBuffer

        obs = {k: v for k, v in self.obs.items() if k not in skip}
        return EpisodeBuffer(id=episode_index, seed=seed, observations=obs, actions=self.actions,
                             rewards=self.rewards, terminations=self.terminations,
                             truncations=self.truncations, infos=self.infos)


def _info_keys(info: dict[str, Any]) -> list[str]:
    """Step-info keys to record: numbers and bools, ``category`` (as an index) and ``expert_action``."""
    keys = []
    for k, v in info.items():
        if k in ("category", "expert_action") or isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
            keys.append(k)
    return keys


@contextlib.contextmanager
def _minari_root(path: Path) -> Iterator[None]:
    """Point Minari at ``path`` for a block (it reads the data directory from the environment)."""
    old = os.environ.get(DATA_ENV_VAR)
    os.environ[DATA_ENV_VAR] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(DATA_ENV_VAR, None)
        else:
            os.environ[DATA_ENV_VAR] = old


def _quiet_minari_metadata_warnings() -> contextlib.AbstractContextManager:
    cm = warnings.catch_warnings()
    cm.__enter__()
    for field in ("code_permalink", "author", "author_email", "eval_env"):
        warnings.filterwarnings("ignore", message=f"`{field}` is set to None")
    return cm


def _ensure_namespace(root: Path) -> None:
    from minari.namespace import create_namespace, list_local_namespaces

    with _minari_root(root):
        if NAMESPACE not in list_local_namespaces():
            try:
                create_namespace(NAMESPACE, description="safeadapt-bench offline logs (scripted policies)")
            except ValueError:  # created by a concurrent collection
                pass


def _install(staging_dataset: Path, final: Path, force: bool) -> None:
    """Move a finished dataset into place; with ``force``, replace an existing one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    trash = None
    if final.exists():
        if not force:
            raise FileExistsError(f"Dataset directory {final} already exists; pass --force (force=True) to replace it.")
        trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=final.parent))
        os.replace(final, trash / "old")
    try:
        os.replace(staging_dataset, final)
    except OSError as err:  # another process installed the same id in the meantime (ENOTEMPTY)
        if trash is not None:
            os.replace(trash / "old", final)
        raise FileExistsError(f"Dataset directory {final} appeared while collecting: {err}") from err
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def make_collect_env(env_id: str, *, robot: str = "Panda", camera_size: int = 64, obs_mode: str = "rgbd+state",
                     categories: list[str] | tuple[str, ...] | None = None, **env_kwargs: Any):
    """The env a collection uses (``gymnasium.make`` with the collection's kwargs)."""
    import gymnasium as gym

    import safeadapt_bench  # noqa: F401  (registers the ids)

    kwargs = _env_kwargs(robot, camera_size, obs_mode, categories, env_kwargs)
    return gym.make(env_id, **kwargs)


def _env_kwargs(robot, camera_size, obs_mode, categories, env_kwargs) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"robot": robot, "obs_mode": obs_mode, **env_kwargs}
    if "rgbd" in obs_mode:
        kwargs["camera_size"] = int(camera_size)
    if categories:
        kwargs["categories"] = list(categories)
    return kwargs


def collect(
    env_id: str,
    episodes: int,
    policy: str = "expert",
    seed: int = 0,
    *,
    robot: str = "Panda",
    camera_size: int = 64,
    obs_mode: str = "rgbd+state",
    categories: list[str] | tuple[str, ...] | None = None,
    force: bool = False,
    progress: bool = True,
    policy_factory: PolicyFactory | None = None,
    id_override: str | None = None,
    workers: int = 1,
    **env_kwargs: Any,
) -> CollectSummary:
    """Roll ``policy`` for ``episodes`` episodes of ``env_id`` and write a Minari dataset.

    Episode ``i`` is reset with :func:`episode_seed` ``(seed, i)`` (env and policy alike), so a
    collection is reproducible and is a prefix of a longer one with the same settings.
    ``env_kwargs`` go to ``gymnasium.make`` (``max_episode_steps``, ``force_threshold``, ...).
    ``policy_factory(name, env, seed=)`` replaces ``safeadapt_bench.experts.make_policy`` (tests); its
    policies' ``reset`` takes ``seed=`` and ``episode=`` (the index). ``workers > 1`` rolls episodes in
    that many processes (a picklable ``policy_factory`` then) and writes the same dataset as one; the
    workers are spawned, so a script that calls it needs Python's ``if __name__ == "__main__":`` guard.
    Raises ``FileExistsError`` when the id exists and ``force`` is false.
    """
    _check_args(policy, episodes, obs_mode, workers)
    did = id_override or dataset_id(env_id, policy, seed=seed, robot=robot, camera_size=camera_size,
                                    obs_mode=obs_mode, categories=categories, **env_kwargs)
    final = dataset_path(did)
    if final.exists() and not force:
        raise FileExistsError(f"Dataset {did!r} already exists at {final}; pass --force (force=True) to replace it, "
                              "or `safeadapt-bench datasets` to list what is there.")
    if policy_factory is None:
        from safeadapt_bench.experts import make_policy as policy_factory

    make_kwargs = {"robot": robot, "camera_size": camera_size, "obs_mode": obs_mode, "categories": categories,
                   **env_kwargs}
    env = make_collect_env(env_id, **make_kwargs)
    root = datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".collect-", dir=root))
    bar = None
    try:
        pol = policy_factory(policy, env, seed=seed)
        max_steps = env.spec.max_episode_steps if env.spec is not None else None
        with _minari_root(staging):
            dataset = _empty_dataset(did, env, env_id, policy, episodes, seed)
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=episodes * (max_steps or 0) or None, unit="step", desc=f"collect {did}",
                       dynamic_ncols=True, smoothing=0.1)
        tally, images, storage = _Tally(), image_like_keys(env.observation_space), {}
        rollouts = _rollouts(env, pol, episodes, seed, workers, (env_id, make_kwargs, policy, seed, policy_factory),
                             bar)
        for i, s, rec, ep in rollouts:
            tally.add(s, rec, ep)
            dataset.update_dataset_from_buffer([rec.buffer(i, s, skip=images)])
            storage = write_image_observations(dataset.storage.data_path / "main_data.hdf5", i,
                                               env.observation_space, {k: rec.obs[k] for k in images})
            if bar is not None:
                if max_steps and ep["steps"] < max_steps:  # an early end: keep the ETA honest
                    bar.total -= max_steps - ep["steps"]
                bar.set_postfix(success=f"{tally.successes}/{i + 1}", cost=f"{np.mean(tally.costs):.2f}",
                                refresh=False)
        tally.speeds()  # stops the clock
        if bar is not None:
            bar.close()
            bar = None
        dataset.storage.update_metadata({
            "safeadapt": _metadata(env, env_id, policy, seed, episodes, tally, storage,
                                   _env_kwargs(robot, camera_size, obs_mode, categories, env_kwargs)),
            "dataset_size": dataset.storage.get_size()})  # the image datasets were added after Minari's count
        _ensure_namespace(root)
        _install(staging / did, final, force)
    except BaseException:
        if bar is not None:
            bar.close()
        raise
    finally:
        env.close()
        shutil.rmtree(staging, ignore_errors=True)
    return CollectSummary(dataset_id=did, path=str(final), episodes=episodes, workers=min(workers, episodes),
                          **tally.speeds(), **tally.summary())


def _check_args(policy: str, episodes: Any, obs_mode: str, workers: Any) -> None:
    check_policy(policy)
    for name, value in (("episodes", episodes), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if obs_mode not in COLLECT_OBS_MODES:
        raise ValueError(f"Cannot collect with obs_mode {obs_mode!r}: the scripted policies read the state; "
                         f"choose one of {list(COLLECT_OBS_MODES)}.")


def _empty_dataset(did: str, env: Any, env_id: str, policy: str, episodes: int, seed: int) -> Any:
    """A Minari dataset with no episode yet, in Minari's current data directory."""
    import minari

    import safeadapt_bench

    cm = _quiet_minari_metadata_warnings()
    try:
        return minari.create_dataset_from_buffers(
            did, [], env=env, observation_space=env.observation_space, action_space=env.action_space,
            algorithm_name=f"safeadapt_bench.experts:{policy}",
            description=f"{policy} scripted policy on {env_id} ({episodes} episodes, seed {seed}); "
            "layout: safeadapt_bench.data.collect", data_format="hdf5",
            requirements=[f"safeadapt-bench=={safeadapt_bench.__version__}"])
    finally:
        cm.__exit__(None, None, None)


class _Tally:
    """What a collection has written so far: seeds, steps, env time, successes, costs, returns."""

    def __init__(self) -> None:
        self.t_start, self.seconds = time.perf_counter(), None
        self.seeds: list[int] = []
        self.info_keys: list[str] = []
        self.steps, self.env_seconds, self.successes, self.cost_steps = 0, 0.0, 0, 0
        self.costs: list[float] = []
        self.returns: list[float] = []

    def add(self, seed: int, rec: _EpisodeRecorder, ep: dict[str, Any]) -> None:
        self.seeds.append(seed)
        self.info_keys = self.info_keys or rec.info_keys
        self.steps += ep["steps"]
        self.env_seconds += ep["env_seconds"]
        self.successes += ep["success"]
        self.costs.append(ep["cost"])
        self.cost_steps += ep["cost_steps"]
        self.returns.append(ep["return"])

    def speeds(self) -> dict[str, Any]:
        """Steps and speeds, the clock stopped at the first call (after the last episode)."""
        if self.seconds is None:
            self.seconds = time.perf_counter() - self.t_start
        seconds = self.seconds
        return {"steps": self.steps, "seconds": seconds, "steps_per_second": self.steps / seconds,
                "env_steps_per_second": self.steps / self.env_seconds}

    def summary(self) -> dict[str, float]:
        return {"success_rate": self.successes / len(self.seeds), "cost_rate": self.cost_steps / max(self.steps, 1),
                "mean_episode_cost": float(np.mean(self.costs)), "mean_return": float(np.mean(self.returns))}


def _metadata(env: Any, env_id: str, policy: str, seed: int, episodes: int, tally: _Tally,
              storage: dict[str, str], env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``safeadapt`` metadata of a finished collection (see the module docstring)."""
    import safeadapt_bench
    from safeadapt_bench.envs.costs import COST_TERMS
    from safeadapt_bench.harness.records import blas_kernel

    spec, speeds = env.spec, tally.speeds()
    return {
        "layout_version": DATASET_VERSION,
        "package_version": safeadapt_bench.__version__,
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "registered_spec": _registered_spec(env_id),
        "max_episode_steps": spec.max_episode_steps if spec is not None else None,
        "policy": policy,
        "seed": int(seed),
        "episodes": int(episodes),
        "episode_seeds": tally.seeds,
        "categories": list(env.unwrapped.categories),
        "cost_terms": list(COST_TERMS),
        "info_keys": list(tally.info_keys),
        "image_storage": storage,
        "obs_keys": list(env.observation_space.spaces),
        "cost_limit": float(env.unwrapped.cost_limit),
        "blas_kernel": blas_kernel(),  # the episodes depend on it: see the module docstring
        "collect_seconds": speeds["seconds"],
        "steps_per_second": speeds["steps_per_second"],
        "env_steps_per_second": speeds["env_steps_per_second"],
        **tally.summary(),
    }


def _rollout(env, pol, index: int, seed: int, bar: Any = None) -> tuple[_EpisodeRecorder, dict[str, Any]]:
    """Roll one episode (reset with ``seed``, the policy told its ``index``); the recorder and its figures."""
    t0 = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    pol.reset(seed=seed, episode=index)
    t_env = time.perf_counter() - t0
    categories = list(env.unwrapped.categories)
    rec = None
    ep = {"steps": 0, "success": False, "cost": 0.0, "cost_steps": 0, "return": 0.0}
    while True:
        t0 = time.perf_counter()
        action = np.clip(np.asarray(pol(obs), dtype=np.float32), -1.0, 1.0)
        label = getattr(pol, "label", None)
        next_obs, reward, terminated, truncated, info = env.step(action)
        t_env += time.perf_counter() - t0
        info = {**info, "expert_action": action if label is None else np.asarray(label, np.float32)}
        if rec is None:
            rec = _EpisodeRecorder(obs, categories, _info_keys(info))
        rec.add_step(next_obs, action, reward, terminated, truncated, info)
        obs = next_obs
        ep["steps"] += 1
        ep["success"] |= bool(info["success"])
        ep["cost"] += float(info["cost"])
        ep["cost_steps"] += float(info["cost"]) > 0
        ep["return"] += float(reward)
        if bar is not None:
            bar.update(1)
        if terminated or truncated:
            return rec, {**ep, "env_seconds": t_env}


def _rollouts(env, pol, episodes: int, seed: int, workers: int, worker_args: tuple,
              bar: Any) -> Iterator[tuple[int, int, _EpisodeRecorder, dict[str, Any]]]:
    """``(index, reset seed, recorder, figures)`` of each episode, in order.

    With ``workers > 1`` the episodes are rolled in a pool of spawned processes, each with an env and
    a policy of its own (made as here, primed by episode 0: :func:`_worker_init`), and come back in
    order; the dataset is the one a serial collection writes (tested).
    """
    tasks = [(i, episode_seed(seed, i)) for i in range(episodes)]
    workers = min(workers, episodes)
    if workers <= 1:
        for i, s in tasks:
            yield (i, s, *_rollout(env, pol, i, s, bar))
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds a GL context or torch threads
    with ctx.Pool(workers, initializer=_worker_init, initargs=worker_args) as pool:
        for (i, s), (rec, ep) in zip(tasks, pool.imap(_worker_rollout, tasks)):
            if bar is not None:
                bar.update(ep["steps"])
            yield i, s, rec, ep


_WORKER: dict[str, Any] = {}


def _worker_init(env_id: str, make_kwargs: dict[str, Any], policy: str, seed: int,
                 policy_factory: PolicyFactory) -> None:
    """A worker's env and policy, which first roll episode 0 unrecorded: the scripted policies measure
    robot constants (finger-pad offset, base pose) once, at first use, from the state at that moment,
    so a serial collection fixes them in episode 0, and so must every worker."""
    _WORKER["env"] = env = make_collect_env(env_id, **make_kwargs)
    _WORKER["pol"] = pol = policy_factory(policy, env, seed=seed)
    _rollout(env, pol, 0, episode_seed(seed, 0))


def _worker_rollout(task: tuple[int, int]) -> tuple[_EpisodeRecorder, dict[str, Any]]:
    return _rollout(_WORKER["env"], _WORKER["pol"], *task)


#: Below this many episodes one process collects faster: a worker costs a spawn (~5 s) and an unrecorded
#: episode 0 (`perf --section data --quick`: 0.85x with 2 workers on 4 x 50 steps).
MIN_PARALLEL_EPISODES = 10


def default_workers(episodes: int | None = None) -> int:
    """Collection workers by default: the cores this process may use (one below
    :data:`MIN_PARALLEL_EPISODES` episodes)."""
    if episodes is not None and episodes < MIN_PARALLEL_EPISODES:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _registered_spec(env_id: str) -> dict[str, Any]:
    """The parts of the registered spec that define the env version."""
    from gymnasium.envs.registration import registry

    spec = registry[env_id]
    return {"id": spec.id, "entry_point": str(spec.entry_point), "max_episode_steps": spec.max_episode_steps,
            "kwargs": dict(spec.kwargs)}
