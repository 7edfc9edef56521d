"""Environment speed: the wrapped env against robosuite's own Lift and the physics-only ceiling,
the fast step loop against robosuite's, resets, vector scaling."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from safeadapt_bench.perf import Measurement, median_seconds

ENV_ID = "SafeAdapt/Lift-v0"


def _actions(n: int, seed: int = 0) -> np.ndarray:
    """A smooth, safe action sequence (slow wandering above the table)."""
    t = np.arange(n)[:, None]
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, 7)
    a = 0.3 * np.sin(0.1 * t + phase)
    a[:, 6] = -1.0
    return a.astype(np.float32)


def _interleaved(steppers: list[Callable[[np.ndarray], object]], reset: Callable[[int], None], steps: int,
                 rounds: int) -> list[float]:
    """Median steps/s of each step function, all replaying the same actions in alternating 10-step
    blocks (so machine load falls on all alike). ``reset(r)`` starts round ``r``; round 0 warms up."""
    actions = _actions(steps)
    rates: list[list[float]] = [[] for _ in steppers]
    for r in range(rounds + 1):
        reset(r)
        spent = [0.0] * len(steppers)
        for block in np.array_split(actions, max(1, steps // 10)):
            for i, step in enumerate(steppers):
                t0 = time.perf_counter()
                for a in block:
                    step(a)
                spent[i] += time.perf_counter() - t0
        if r:
            for i, t in enumerate(spent):
                rates[i].append(steps / t)
    return [statistics.median(x) for x in rates]


def robosuite_lift(camera_size: int | None = None):
    """robosuite's own ``Lift`` with Panda, OSC_POSE (its default controller), 20 Hz and soft resets;
    with ``camera_size``, one RGB-D ``agentview`` camera of that size at robosuite's render defaults."""
    import robosuite as suite

    cam = camera_size is not None
    return suite.make("Lift", robots="Panda", control_freq=20, hard_reset=False, ignore_done=True,
                      has_renderer=False, has_offscreen_renderer=cam, use_camera_obs=cam,
                      camera_names="agentview", camera_heights=camera_size or 84, camera_widths=camera_size or 84,
                      camera_depths=True)


def _physics_only(env) -> Callable[[np.ndarray], None]:
    """A step function that runs only ``mj_step`` (the env's substeps) from the env's current state."""
    import mujoco

    scene = env.unwrapped.scene
    m, d = scene.sim.model._model, scene.sim.data._data
    scratch = mujoco.MjData(m)
    substeps = int(scene.control_timestep / scene.model_timestep)

    def step(_action: np.ndarray) -> None:
        for name in ("qpos", "qvel", "act", "ctrl", "qacc_warmstart"):
            getattr(scratch, name)[:] = getattr(d, name)
        for _ in range(substeps):
            mujoco.mj_step(m, scratch)

    return step


def _vs_robosuite(camera: bool, steps: int, rounds: int) -> tuple[float, float, float]:
    """Median steps/s of the wrapped env, robosuite's own Lift and the wrapped env's physics alone
    (``mj_step`` on the same states), interleaved. With ``camera``: one 64x64 RGB-D camera each."""
    import gymnasium as gym

    env = gym.make(ENV_ID, obs_mode="rgbd" if camera else "state", camera_size=64, max_episode_steps=10**9)
    rs = robosuite_lift(64 if camera else None)
    physics = _physics_only(env)

    ctx = getattr(rs.sim, "_render_context_offscreen", None)

    def rs_step(a: np.ndarray) -> None:
        if ctx is not None:  # robosuite draws into whichever GL context is current; make it its own
            ctx.gl_ctx.make_current()
        rs.step(a.astype(np.float64))

    def reset(r: int) -> None:
        env.reset(seed=r)
        np.random.seed(r)
        if ctx is not None:
            ctx.gl_ctx.make_current()
        rs.reset()

    try:
        return tuple(_interleaved([env.step, rs_step, physics], reset, steps, rounds))
    finally:
        env.close()
        rs.close()


def _fast_vs_robosuite_loop(steps: int, rounds: int) -> tuple[float, float]:
    """Median steps/s of the wrapped env with the fast step loop and with robosuite's own loop
    (``fast_step=False``), same scene, seeds and actions, so both simulate identical states."""
    import gymnasium as gym

    fast, slow = (gym.make(ENV_ID, obs_mode="state", fast_step=f, max_episode_steps=10**9) for f in (True, False))

    def reset(r: int) -> None:
        fast.reset(seed=r)
        slow.reset(seed=r)

    try:
        return tuple(_interleaved([fast.step, slow.step], reset, steps, rounds))
    finally:
        fast.close()
        slow.close()


def _reset_seconds(repeats: int) -> tuple[float, float]:
    """Median reset time of raw robosuite (its default hard reset) and of the wrapped env, no camera."""
    import gymnasium as gym

    from safeadapt_bench.envs.categories import SPLITS
    from safeadapt_bench.envs.lift import LiftScene

    hard = LiftScene(robots="Panda", categories=SPLITS["Lift"]["train"], use_camera_obs=False,
                     has_offscreen_renderer=False, hard_reset=True)
    hard.reset()
    t_hard = median_seconds(hard.reset, max(3, repeats // 4))
    hard.close()
    env = gym.make(ENV_ID, obs_mode="state")
    env.reset(seed=0)
    seeds = iter(range(10**6))
    t_env = median_seconds(lambda: env.reset(seed=next(seeds)), repeats)
    env.close()
    return t_hard, t_env


def _vector_scaling(obs_mode: str, steps: int, rounds: int) -> tuple[float, float]:
    """Median steps/s of async vector envs with 1 and with 2 workers, in alternating rounds of ``steps``
    vector steps (round 0 warms up), so that machine load falls on both alike."""
    import gymnasium as gym

    venvs = {n: gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="async", obs_mode=obs_mode,
                             camera_size=64, max_episode_steps=10**9) for n in (1, 2)}
    actions = _actions(steps * (rounds + 1))
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        for venv in venvs.values():
            venv.reset(seed=0)
        for r in range(rounds + 1):
            for n, venv in venvs.items():
                block = np.repeat(actions[r * steps:(r + 1) * steps, None], n, axis=1)
                t0 = time.perf_counter()
                for a in block:
                    venv.step(a)
                if r:
                    rates[n].append(n * steps / (time.perf_counter() - t0))
    finally:
        for venv in venvs.values():
            venv.close()
    return statistics.median(rates[1]), statistics.median(rates[2])


def _mujoco_steps(n: int) -> float:
    """Seconds for ``n`` ``mj_step`` of a small model (one process's share of the scaling ceiling)."""
    import mujoco

    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><geom type='plane' size='1 1 .1'/><body pos='0 0 .2'><freejoint/>"
        "<geom size='.05'/></body></worldbody></mujoco>")
    data = mujoco.MjData(model)
    t0 = time.perf_counter()
    for _ in range(n):
        mujoco.mj_step(model, data)
    return time.perf_counter() - t0


def _process_scaling(steps: int, rounds: int) -> tuple[float, float]:
    """This machine's ceiling for 2 worker processes: median steps/s of pure MuJoCo stepping in 1 and in 2
    processes at once, in alternating rounds. Two CPU-bound processes rarely run 2x as fast as one on
    shared or frequency-scaled cores; a vector env cannot scale better than this."""
    import multiprocessing

    one, two = [], []
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_mujoco_steps, [1000, 1000])
        for _ in range(rounds):
            t0 = time.perf_counter()
            pool.map(_mujoco_steps, [steps])
            one.append(steps / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            pool.map(_mujoco_steps, [steps, steps], chunksize=1)
            two.append(2 * steps / (time.perf_counter() - t0))
    return statistics.median(one), statistics.median(two)


def _import_seconds(repeats: int) -> float:
    def once() -> None:
        subprocess.run([sys.executable, "-c", "import safeadapt_bench"], check=True)

    base = median_seconds(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeats)
    return max(0.0, median_seconds(once, repeats) - base)


def run(quick: bool = False) -> list[Measurement]:
    """Measure everything; ``quick`` uses fewer steps and repeats."""
    s = "env"
    rounds = 2 if quick else 5
    out = []
    wrapped, rs, physics = _vs_robosuite(False, 100 if quick else 200, rounds)
    out.append(Measurement(s, "steps/s, no camera: wrapped env", wrapped, "steps/s",
                           "robosuite's Lift (Panda, OSC_POSE, 20 Hz)", rs, ">= 1.5x"))
    out.append(Measurement(s, "steps/s, no camera: wrapped env", wrapped, "steps/s",
                           "physics only (mj_step x 25, same states)", physics, "fraction of the ceiling"))
    fast, slow = _fast_vs_robosuite_loop(100 if quick else 200, rounds)
    out.append(Measurement(s, "steps/s, no camera: fast step loop", fast, "steps/s",
                           "robosuite's step loop, same scene", slow, "faster"))
    wrapped, rs, physics = _vs_robosuite(True, 25 if quick else 60, rounds)
    out.append(Measurement(s, "steps/s, 64x64 RGB-D: wrapped env", wrapped, "steps/s",
                           "robosuite's Lift, same camera, its render defaults", rs, ">= 4x"))
    out.append(Measurement(s, "steps/s, 64x64 RGB-D: wrapped env", wrapped, "steps/s",
                           "physics only (mj_step x 25, same states)", physics, "fraction of the ceiling"))
    t_hard, t_env = _reset_seconds(8 if quick else 30)
    out.append(Measurement(s, "reset, no camera: wrapped env", 1000 * t_env, "ms",
                           "robosuite hard reset", 1000 * t_hard, "<= 10 ms"))
    one, two = _process_scaling(100_000 if quick else 300_000, rounds + 2)
    ceiling = two / one
    out.append(Measurement(s, "2 processes of pure MuJoCo stepping (this machine's ceiling)", two, "steps/s",
                           "1 process", one, "what 2 workers can reach here"))
    for mode, steps in (("state", 100 if quick else 300), ("rgbd", 20 if quick else 60)):
        one, two = _vector_scaling(mode, steps, rounds + 2)
        label = "no camera" if mode == "state" else "64x64 RGB-D"
        out.append(Measurement(s, f"async vector, 2 workers, {label}", two, "steps/s",
                               "1 worker", one, ">= 1.8x"))
        out.append(Measurement(s, f"async vector, 2 workers, {label}: scaling", two / one, "x",
                               "the machine's 2-process ceiling", ceiling, "fraction of the ceiling"))
    out.append(Measurement(s, "import safeadapt_bench", _import_seconds(3), "s", "", None, "< 1 s"))
    # Vector scaling needs free cores: the load average says how many other processes competed.
    out.append(Measurement(s, f"machine load at the end (1-min load average, {os.cpu_count()} cores)",
                           os.getloadavg()[0], "", target="< 1 for vector scaling"))
    return out
