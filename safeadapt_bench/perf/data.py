"""Offline-log collection speed: collecting (env + policy + recording + HDF5 writes) against the env alone.

Both sides roll the same scripted expert over the same episode seeds; rounds alternate between them
and the medians are compared. The target is a recording overhead of at most 10% (ratio >= 0.9x).
A second figure is collection with two worker processes against one (spawning the workers
included), on the quick suite's cameras: the target is 1.8x on two cores.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

from safeadapt_bench.perf import Measurement

ENV_ID = "SafeAdapt/Lift-v0"


def _env_alone(obs_mode: str, episodes: int, steps: int, seed: int) -> float:
    """Steps/s of the env stepping the expert over the collection's episode seeds, recording nothing."""
    import numpy as np

    from safeadapt_bench.data.collect import episode_seed, make_collect_env
    from safeadapt_bench.experts import make_policy

    env = make_collect_env(ENV_ID, obs_mode=obs_mode, camera_size=64, max_episode_steps=steps)
    pol = make_policy("expert", env, seed=seed)
    n, t0 = 0, time.perf_counter()
    for i in range(episodes):
        s = episode_seed(seed, i)
        obs, _ = env.reset(seed=s)
        pol.reset(seed=s)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(np.clip(np.asarray(pol(obs), np.float32), -1, 1))
            done = terminated or truncated
            n += 1
    elapsed = time.perf_counter() - t0
    env.close()
    return n / elapsed


def _collecting(obs_mode: str, episodes: int, steps: int, seed: int, workers: int = 1,
                **env_kwargs) -> tuple[float, float]:
    """(collection steps/s, env-alone steps/s of one process timed inside the same collection)."""
    from safeadapt_bench.data.collect import collect

    root = tempfile.mkdtemp(prefix="safeadapt-perf-data-")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = root
    try:
        s = collect(ENV_ID, episodes, "expert", seed, obs_mode=obs_mode, camera_size=64, progress=False,
                    max_episode_steps=steps, workers=workers, **env_kwargs)
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old
        shutil.rmtree(root, ignore_errors=True)
    return s.steps_per_second, s.env_steps_per_second


def measure(obs_mode: str, episodes: int, steps: int, rounds: int) -> tuple[float, float, float]:
    """Medians of (collection steps/s, env-alone steps/s, in-run env-alone steps/s) over alternating rounds."""
    coll, alone, inrun = [], [], []
    _env_alone(obs_mode, 1, 10, seed=0)  # warm-up (first env in the process), dropped
    for r in range(rounds):
        if r % 2:  # alternate which side goes first
            c, i = _collecting(obs_mode, episodes, steps, seed=r)
            a = _env_alone(obs_mode, episodes, steps, seed=r)
        else:
            a = _env_alone(obs_mode, episodes, steps, seed=r)
            c, i = _collecting(obs_mode, episodes, steps, seed=r)
        alone.append(a)
        coll.append(c)
        inrun.append(i)
    return statistics.median(coll), statistics.median(alone), statistics.median(inrun)


def run(quick: bool = False) -> list[Measurement]:
    """Collection against the env alone, without and with the 64x64 RGB-D camera."""
    out = []
    settings = (("state", "no camera", 2, 75 if quick else 150, 1 if quick else 3),
                ("rgbd+state", "64x64 RGB-D", 1, 30 if quick else 100, 1 if quick else 3))
    for obs_mode, label, episodes, steps, rounds in settings:
        coll, alone, inrun = measure(obs_mode, episodes, steps, rounds)
        out.append(Measurement("data", f"collect steps/s, {label} ({episodes}x{steps} expert steps)", coll,
                               "steps/s", "env + expert alone", alone, ">= 0.9x"))
        out.append(Measurement("data", f"collect steps/s, {label}: same run", coll, "steps/s",
                               "env + expert share of it", inrun, ">= 0.9x"))
    out.append(parallel(episodes=4 if quick else 8, steps=50 if quick else 150))
    return out


def parallel(episodes: int, steps: int, workers: int = 2) -> Measurement:
    """Collection with ``workers`` processes against one, front and wrist 64x64 RGB-D (one round each)."""
    kw = {"cameras": ("front", "wrist")}
    one, _ = _collecting("rgbd+state", episodes, steps, seed=0, **kw)
    many, _ = _collecting("rgbd+state", episodes, steps, seed=0, workers=workers, **kw)
    return Measurement("data", f"collect steps/s, {workers} workers, front + wrist 64x64 RGB-D "
                       f"({episodes}x{steps} expert steps, spawn included)", many, "steps/s", "one process", one,
                       f">= {0.9 * workers:.1f}x")
