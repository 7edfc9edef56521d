"""Shared helpers for the harness, leaderboard and plot tests: toy-env suites and a finished sweep."""

from __future__ import annotations

import dataclasses
from typing import Any

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
