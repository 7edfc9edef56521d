"""Shared helpers for the harness, leaderboard and plot tests: toy-env suites and a finished sweep."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from safeadapt_bench.agents.simple import RandomAgent
from safeadapt_bench.harness.suites import Settings, Suite, TaskSpec

TOY = {
    "env_factory": "safeadapt_bench.harness.toy:make_env",
    "dataset_provider": "safeadapt_bench.harness.toy:no_dataset",
    "probe": "none",
}


def toy_suite(
    agents: tuple[str, ...] = ("random", "shielded-random"),
    seeds: tuple[int, ...] = (0, 1),
    tasks: tuple[TaskSpec, ...] = (
        TaskSpec("Lift", obs_mode="state"),
        TaskSpec("PickPlace", obs_mode="state"),
    ),
    **settings: Any,
) -> Suite:
    """A suite on the toy env with second-scale budgets."""
    base = dict(
        dataset_episodes=0,
        adapt_env_steps=120,
        eval_every=40,
        eval_episodes=2,
        final_eval_episodes=3,
        success_threshold=0.5,
        **TOY,
    )
    base.update(settings)
    return Suite("toy", agents=agents, tasks=tasks, seeds=seeds, settings=Settings(**base))


def toy_toml(path: str, cells_steps: int = 120, seeds: tuple[int, ...] = (0, 1)) -> str:
    """Write a TOML suite file for the toy env and return its path."""
    text = f'''name = "toy-file"
agents = ["random", "shielded-random"]
seeds = {list(seeds)}

[[tasks]]
task = "Lift"
obs_mode = "state"

[settings]
dataset_episodes = 0
adapt_env_steps = {cells_steps}
eval_every = {max(1, cells_steps // 4)}
eval_episodes = 3
final_eval_episodes = 5
env_factory = "{TOY["env_factory"]}"
dataset_provider = "{TOY["dataset_provider"]}"
probe = "none"
'''
    with open(path, "w") as f:
        f.write(text)
    return path


def replace_settings(suite: Suite, **changes: Any) -> Suite:
    """A copy of ``suite`` with some settings changed."""
    return suite.replace(settings=dataclasses.replace(suite.settings, **changes))


class DeviceAgent(RandomAgent):
    """A random agent that takes a ``device`` (as the reference agents do) and reports wall-clock and
    cache statistics from ``pretrain`` (which the harness files under ``timing``)."""

    def __init__(self, observation_space: Any, action_space: Any, *, seed: int = 0, device: str = "auto",
                 **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, seed=seed, **kwargs)
        self.device = device

    def pretrain(self, dataset: Any, budget: Any) -> dict[str, Any]:
        """Deterministic statistics beside run-dependent ones (a clock reading, a cache hit)."""
        now = time.perf_counter()
        return {"updates": 3, "seconds": now, "frames_from_cache": now % 2 > 1,
                "val_curve": {"updates": [1, 2], "wall_seconds": [now, now]}, "device": self.device}
