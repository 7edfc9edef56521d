"""A sweep: plan the cells of a suite, skip finished ones, run the rest, and write their records."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from safeadapt_bench.agents.registry import check_obs_keys, resolve_agent
from safeadapt_bench.harness.cell import resolve_dataset_provider, resolve_env_factory, resolve_probe
from safeadapt_bench.harness.devices import check_device
from safeadapt_bench.harness.progress import SweepProgress, no_bars
from safeadapt_bench.harness.records import ResultsDir
from safeadapt_bench.harness.suites import CellSpec, Suite


@dataclass
class SweepResult:
    """What a sweep did.

    Attributes:
        skipped: cell ids that already had records (resumed).
        completed: cell ids run and written now.
        failed: cell id -> traceback of cells that raised (they re-run on the next invocation).
    """

    skipped: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def plan(suite: Suite, results: ResultsDir | None) -> tuple[list[CellSpec], list[CellSpec]]:
    """``(todo, done)`` cells; raises ``RecordConflictError`` when a record has another configuration."""
    todo, done = [], []
    for spec in suite.cells():
        (done if results is not None and results.is_done(spec.cell_id, spec.to_dict()) else todo).append(spec)
    return todo, done


def agent_status(suite: Suite) -> dict[str, str]:
    """Agent -> ``"ok"`` or the reason it cannot be resolved (for ``--dry-run``)."""
    out = {}
    for a in suite.agents:
        try:
            resolve_agent(suite.aliases.get(a, a))
            out[a] = "ok"
        except ValueError as err:
            out[a] = str(err)
    return out


def preflight(suite: Suite, env_factory: Any = None, dataset_provider: Any = None, probe: Any = None) -> None:
    """Check, before running anything: agents resolve, the env factory, dataset provider and probe import,
    and every agent's required observation keys exist on each task's env.

    Raises:
        AgentResolutionError: an unknown agent or a class lacking a method.
        ValueError: an import path that does not import, or an env lacking keys an agent needs.
    """
    s = suite.settings
    classes = {a: resolve_agent(suite.aliases.get(a, a)) for a in suite.agents}
    make_env = resolve_env_factory(env_factory if env_factory is not None else s.env_factory)
    if s.dataset_episodes > 0:
        resolve_dataset_provider(dataset_provider if dataset_provider is not None else s.dataset_provider)
    chosen_probe = probe if probe is not None else s.probe
    if chosen_probe is not None:  # the default probe is optional: without it, forgetting is not measured
        resolve_probe(chosen_probe)
    if not any(getattr(c, "required_obs_keys", ()) for c in classes.values()):
        return
    for task in suite.tasks:
        env = make_env(task.env_id("train"), **task.env_kwargs_for())
        try:
            for cls in classes.values():
                check_obs_keys(
                    cls,
                    env.observation_space,
                    f"{task.env_id('train')} (obs_mode={task.obs_mode!r}, task {task.label})",
                )
        finally:
            env.close()


def run_sweep(
    suite: Suite,
    results_path: str,
    executor: Any = None,
    *,
    env_factory: Any = None,
    dataset_provider: Any = None,
    probe: Any = None,
    progress: bool = True,
    videos: bool | None = None,
    device: str | None = None,
    on_cell: Callable[[CellSpec, dict[str, Any] | None, str | None], None] | None = None,
) -> SweepResult:
    """Run every unfinished cell of ``suite`` and store records under ``results_path``.

    Finished cells (same config) are skipped, so an interrupted sweep resumes where it stopped.
    ``env_factory``, ``dataset_provider`` and ``probe`` override the suite's settings (import paths or
    picklable callables). ``videos`` (default ``suite.videos``) keeps rollout videos, and ``device`` (default
    ``suite.device``) is the agents' torch device; neither enters the cell config.
    """
    from safeadapt_bench.harness.executors import LocalExecutor

    results = ResultsDir(results_path)
    results.note_agent_order(suite.agents)
    todo, done = plan(suite, results)
    result = SweepResult(skipped=[s.cell_id for s in done])
    if not todo:
        return result
    preflight(suite, env_factory, dataset_provider, probe)
    executor = executor or LocalExecutor()
    overrides = {
        k: v
        for k, v in (("env_factory", env_factory), ("dataset_provider", dataset_provider), ("probe", probe))
        if v is not None
    }
    if not (suite.videos if videos is None else videos):
        overrides["videos"] = False
    chosen_device = suite.device if device is None else check_device(device)
    if chosen_device != "auto":
        overrides["device"] = chosen_device
    if suite.settings.save_agent:
        overrides["checkpoint_dir"] = os.path.join(results.path, "agents")
    bar = SweepProgress(len(todo), len(done)) if progress else None
    try:
        with no_bars() if progress else contextlib.nullcontext():  # cells in this process draw no bars
            phases = None if bar is None else bar.phase
            for spec, record, err in executor.run(todo, overrides, phases):
                if record is not None:
                    record["provenance"]["executor"] = executor.name
                    results.write(record)
                    result.completed.append(spec.cell_id)
                else:
                    results.write_error(spec.cell_id, spec.to_dict(), err or "unknown error")
                    result.failed[spec.cell_id] = err or "unknown error"
                if on_cell is not None:
                    on_cell(spec, record, err)
                if bar is not None:
                    bar.finish(spec, err)
    finally:
        if bar is not None:
            bar.close()
    return result
