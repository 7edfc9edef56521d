"""Environment speed: wrapped env against raw robosuite on the same scene, resets, vector scaling."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

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


def _interleaved(step_a, step_b, reset, steps: int, rounds: int) -> tuple[float, float]:
    """Median steps/s of two step functions replaying the same actions in alternating 10-step blocks
    (so machine load falls on both alike). ``reset(r)`` starts round ``r``; round 0 warms up."""
    actions = _actions(steps)
    rates_a, rates_b = [], []
    for r in range(rounds + 1):
        reset(r)
        t_a = t_b = 0.0
        for block in np.array_split(actions, max(1, steps // 10)):
            t0 = time.perf_counter()
            for a in block:
                step_a(a)
            t1 = time.perf_counter()
            for a in block:
                step_b(a)
            t_a += t1 - t0
            t_b += time.perf_counter() - t1
        if r:
            rates_a.append(steps / t_a)
            rates_b.append(steps / t_b)
    return statistics.median(rates_a), statistics.median(rates_b)


def _steps_per_second(obs_mode: str, steps: int, rounds: int) -> tuple[float, float]:
    """Median steps/s of raw robosuite (the scene) and of the wrapped env, on two envs with the same
    seed and actions, so both sides simulate identical states."""
    import gymnasium as gym

    raw_env, env = (gym.make(ENV_ID, obs_mode=obs_mode, camera_size=64, max_episode_steps=10**9) for _ in range(2))
    scene = raw_env.unwrapped.scene

    def reset(r: int) -> None:
        raw_env.reset(seed=r)
        env.reset(seed=r)

    try:
        return _interleaved(lambda a: scene.step(a.astype(np.float64)), env.step, reset, steps, rounds)
    finally:
        raw_env.close()
        env.close()


def _render_settings(steps: int, rounds: int, camera_size: int = 32) -> tuple[float, float]:
    """Median steps/s with the scene's render settings and with robosuite's defaults (4x multisampling,
    reflections, 640x480 offscreen buffer), on two identically seeded envs."""
    import gymnasium as gym
    import mujoco

    ours, dflt = (gym.make(ENV_ID, camera_size=camera_size, max_episode_steps=10**9) for _ in range(2))
    dflt.reset(seed=0)
    sim = dflt.unwrapped.scene.sim
    vis, ctx = sim.model._model.vis, sim._render_context_offscreen
    vis.quality.offsamples, vis.global_.offwidth, vis.global_.offheight = 4, 640, 480
    ctx.con.free()
    ctx._set_mujoco_context_and_buffers()  # robosuite's way of resizing the buffers

    def reset(r: int) -> None:
        ours.reset(seed=r)
        dflt.reset(seed=r)
        ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 1  # the scene turns it off on reset

    try:
        return _interleaved(ours.step, dflt.step, reset, steps, rounds)
    finally:
        ours.close()
        dflt.close()


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


def _vector_steps_per_second(num_envs: int, obs_mode: str, steps: int) -> float:
    import gymnasium as gym

    venv = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="async", obs_mode=obs_mode,
                        camera_size=64, max_episode_steps=10**9)
    venv.reset(seed=0)
    actions = _actions(steps + 5)
    batch = lambda a: np.repeat(a[None], num_envs, axis=0)  # noqa: E731
    for a in actions[:5]:
        venv.step(batch(a))
    t0 = time.perf_counter()
    for a in actions[5:]:
        venv.step(batch(a))
    elapsed = time.perf_counter() - t0
    venv.close()
    return num_envs * steps / elapsed


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
    raw, wrapped = _steps_per_second("state", 100 if quick else 200, rounds)
    out.append(Measurement(s, "steps/s, no camera: wrapped env", wrapped, "steps/s",
                           "raw robosuite", raw, ">= 0.95x"))
    raw, wrapped = _steps_per_second("rgbd", 25 if quick else 60, rounds)
    out.append(Measurement(s, "steps/s, 64x64 RGB-D: wrapped env", wrapped, "steps/s",
                           "raw robosuite", raw, ">= 0.95x"))
    fast, slow = _render_settings(20 if quick else 60, rounds)
    out.append(Measurement(s, "steps/s, 32x32 RGB-D: scene render settings", fast, "steps/s",
                           "robosuite's default settings", slow, "faster"))
    t_hard, t_env = _reset_seconds(8 if quick else 30)
    out.append(Measurement(s, "reset, no camera: wrapped env", 1000 * t_env, "ms",
                           "robosuite hard reset", 1000 * t_hard, "<= 10 ms"))
    for mode, steps in (("state", 100 if quick else 300), ("rgbd", 20 if quick else 60)):
        one = _vector_steps_per_second(1, mode, steps)
        two = _vector_steps_per_second(2, mode, steps)
        label = "no camera" if mode == "state" else "64x64 RGB-D"
        out.append(Measurement(s, f"async vector, 2 workers, {label}", two, "steps/s",
                               "1 worker", one, "~2x on 2 free cores"))
    out.append(Measurement(s, "import safeadapt_bench", _import_seconds(3), "s", "", None, "< 1 s"))
    return out
