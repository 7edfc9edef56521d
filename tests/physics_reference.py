"""Reference rollouts for the identical-physics test (``tests/test_env_speed_physics.py``).

``python tests/physics_reference.py`` records ``tests/data/physics_reference.npz`` from the current
code. It was recorded before the fast step path (``envs/fast_step.py``) existed, so the test compares
today's env against robosuite's own code path as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).parent / "data" / "physics_reference.npz"
#: (robot, reset seed) of each recorded rollout: Panda and a Robotiq-gripper arm.
CASES: tuple[tuple[str, int], ...] = (("Panda", 3), ("UR5e", 5))
STEPS = 90


def scripted_actions(seed: int, steps: int = STEPS) -> np.ndarray:
    """Seeded actions that reach down, press into the table, close the gripper and lift, with noise:
    free motion, contacts with the table and objects, and gripper closing all occur."""
    rng = np.random.default_rng(seed)
    a = np.clip(rng.normal(0.0, 0.35, (steps, 7)), -1, 1)
    a[:, 3:5] *= 0.2
    a[:, 6] = -1.0
    a[20:45, 2] = -1.0  # down onto the table
    a[45:, 6] = 1.0  # close
    a[60:, 2] = 0.8  # lift
    return a.astype(np.float32)


def rollout(robot: str, seed: int, steps: int = STEPS, **env_kwargs) -> dict[str, np.ndarray]:
    """Joint and object trajectories (every qpos and qvel), observations, rewards and costs."""
    import gymnasium as gym

    import safeadapt_bench  # noqa: F401 - registers the ids

    env = gym.make("SafeAdapt/Lift-v0", robot=robot, obs_mode="state", max_episode_steps=10**9, **env_kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        d = env.unwrapped.scene.sim.data
        out: dict[str, list] = {k: [] for k in ("qpos", "qvel", "ctrl", "proprio", "state", "reward", "cost",
                                                "raw_force")}
        for a in scripted_actions(seed, steps):
            obs, reward, _, _, info = env.step(a)
            for k, v in (("qpos", d.qpos), ("qvel", d.qvel), ("ctrl", d.ctrl), ("proprio", obs["proprio"]),
                         ("state", obs["state"]), ("reward", reward), ("cost", info["cost"]),
                         ("raw_force", info["raw_force"])):
                out[k].append(np.array(v, dtype=np.float64))
        return {k: np.stack(v) for k, v in out.items()}
    finally:
        env.close()


def record(path: Path = REFERENCE) -> None:
    """Write every case's rollout to ``path``."""
    arrays = {f"{robot}_{key}": v for robot, seed in CASES for key, v in rollout(robot, seed).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


if __name__ == "__main__":
    record()
    print(f"wrote {REFERENCE}")
