"""Success and safe-action ratio of the scripted policies, per category and per robot."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

from safeadapt_bench.envs.categories import SPLITS

#: Families of the grounding ids (``SafeAdapt/LiftAmong-v0``, ...): the target among distractors.
GROUNDING_TASKS: tuple[str, ...] = ("LiftAmong", "PickPlaceAmong")


@dataclass
class ExpertResult:
    """One row of the expert table."""

    task: str
    robot: str
    split: str
    category: str
    policy: str
    episodes: int
    success_rate: float
    safe_action_ratio: float
    mean_steps: float


def evaluate(task: str, category: str | None, robot: str = "Panda", split: str = "train", episodes: int = 50,
             policy: str = "expert", seed: int = 0) -> ExpertResult:
    """Roll ``policy`` for ``episodes`` seeded episodes (seeds ``seed .. seed+episodes-1``).

    ``task`` is an id's family name (``Lift``, ``PickPlace``, or a grounding family ``LiftAmong``,
    ``PickPlaceAmong``). ``category=None`` draws the category from the split with each episode's seed.
    Episodes end on success, so the safe-action ratio covers the steps that solve the task.
    """
    import gymnasium as gym

    import safeadapt_bench  # noqa: F401  (registers the ids)
    from safeadapt_bench.experts import make_policy

    env_id = f"SafeAdapt/{task}-v0" if split == "train" else f"SafeAdapt/{task}-Heldout-v0"
    env = gym.make(env_id, obs_mode="state", robot=robot, terminate_on_success=True)
    pol = make_policy(policy, env, seed=seed)
    successes = steps = safe = 0
    for ep in range(seed, seed + episodes):
        obs, _ = env.reset(seed=ep, options={"category": category} if category else None)
        pol.reset(seed=ep)
        done, success = False, False
        while not done:
            obs, _, terminated, truncated, info = env.step(pol(obs))
            steps += 1
            safe += info["cost"] == 0
            success = success or info["success"]
            done = terminated or truncated
        successes += success
    env.close()
    return ExpertResult(task, robot, split, category or "all", policy, episodes, successes / episodes,
                        safe / max(steps, 1), steps / episodes)


def expert_table(tasks: tuple[str, ...] = ("Lift", "PickPlace"), robots: tuple[str, ...] = (
        "Sawyer", "UR5e", "Kinova3", "IIWA", "Jaco"), episodes: int = 50, policy: str = "expert",
        workers: int = 2, progress: bool = True) -> list[ExpertResult]:
    """Every category of both splits on the Panda, and every other robot on the train split; a grounding
    family (:data:`GROUNDING_TASKS`) gets one row per split (Panda, categories drawn by seed)."""
    jobs = []
    for task in tasks:
        if task in GROUNDING_TASKS:
            jobs += [dict(task=task, category=None, split=split) for split in ("train", "heldout")]
            continue
        for split in ("train", "heldout"):
            jobs += [dict(task=task, category=c, split=split) for c in SPLITS[task][split]]
        jobs += [dict(task=task, category=None, split="train", robot=r) for r in robots]
    common = dict(episodes=episodes, policy=policy)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(evaluate, **job, **common) for job in jobs]
        if progress:
            from tqdm import tqdm
            futures_iter = tqdm(futures, desc="expert table", unit="row")
        else:
            futures_iter = futures
        return [f.result() for f in futures_iter]


def to_markdown(rows: list[ExpertResult]) -> str:
    """The table as Markdown."""
    lines = ["| task | robot | split | category | policy | episodes | success | safe-action ratio | steps |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.task} | {r.robot} | {r.split} | {r.category} | {r.policy} | {r.episodes} | "
                     f"{r.success_rate:.2f} | {r.safe_action_ratio:.3f} | {r.mean_steps:.0f} |")
    return "\n".join(lines)


def to_records(rows: list[ExpertResult]) -> list[dict]:
    return [asdict(r) for r in rows]
