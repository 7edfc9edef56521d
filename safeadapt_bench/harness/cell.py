"""Run one benchmark cell: pre-train, adapt with periodic evaluation, evaluate, and build its record.

The env factory, dataset provider and forgetting probe are injectable (arguments, or import paths in
the suite's settings), so tests run cells on a toy env with tiny budgets.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from typing import Any

from safeadapt_bench.agents.budget import Budget
from safeadapt_bench.agents.registry import check_obs_keys, resolve_agent
from safeadapt_bench.harness.devices import resolve_device, takes_device
from safeadapt_bench.harness.metrics import CURVE_SERIES, pooled, ratio, time_to_threshold
from safeadapt_bench.harness.monitor import Film, SafetyMonitor, cost_limit_of, evaluate, summarize
from safeadapt_bench.harness.records import SCHEMA_VERSION, provenance, split_volatile
from safeadapt_bench.harness.safety import (
    MultiplierTrace,
    provide_logs,
    safety_curves,
    safety_metrics,
    suite_agent_kwargs,
)
from safeadapt_bench.harness.suites import CellSpec

EnvFactory = Callable[..., Any]
DatasetProvider = Callable[..., Any]
Probe = Callable[[Any], Any]

#: Import path of the project's default dataset provider (offline logs, issue 3).
DEFAULT_DATASET_PROVIDER = "safeadapt_bench.data:provide_dataset"
#: Import path of the default forgetting probe.
DEFAULT_PROBE = "safeadapt_bench.backbones:probe_accuracy"

# Evaluation seeds: disjoint ranges for curves, final train, final held-out and the source robot.
_SEED_CURVE, _SEED_TRAIN, _SEED_HELDOUT, _SEED_SOURCE = 10_000_000, 20_000_000, 30_000_000, 40_000_000


def import_object(path: str, what: str) -> Any:
    """Import ``package.module:attr``; a clear ``ValueError`` when it is not there."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{what} {path!r} must look like 'package.module:function'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{what} {path!r}: cannot import {module_name!r}: {err}") from err
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"{what} {path!r}: module {module_name!r} has no {attr!r}.") from None


def _default_env_factory(env_id: str, **kwargs: Any) -> Any:
    import gymnasium as gym

    import safeadapt_bench  # noqa: F401  (registers the SafeAdapt ids)

    return gym.make(env_id, **kwargs)


def resolve_env_factory(factory: EnvFactory | str | None) -> EnvFactory:
    """A callable env factory from a callable, an import path, or ``None`` (``gymnasium.make``)."""
    if factory is None:
        return _default_env_factory
    return import_object(factory, "env_factory") if isinstance(factory, str) else factory


def resolve_dataset_provider(provider: DatasetProvider | str | None) -> DatasetProvider:
    """A callable dataset provider (``None``: :data:`DEFAULT_DATASET_PROVIDER`)."""
    if provider is None:
        try:
            return import_object(DEFAULT_DATASET_PROVIDER, "dataset_provider")
        except ValueError as err:
            raise ValueError(
                f"No default dataset provider is installed ({err}). Set settings.dataset_provider "
                "to 'module:function', or to 'safeadapt_bench.harness.toy:no_dataset' to skip "
                "offline logs."
            ) from None
    return import_object(provider, "dataset_provider") if isinstance(provider, str) else provider


def resolve_probe(probe: Probe | str | None) -> tuple[Probe | None, str | None]:
    """``(probe, note)``: the probe callable or ``None`` with the reason it is unavailable."""
    if probe == "none":
        return None, "probe disabled in settings"
    if probe is None:
        try:
            return import_object(DEFAULT_PROBE, "probe"), None
        except ValueError as err:
            return None, str(err)
    return (import_object(probe, "probe") if isinstance(probe, str) else probe), None


def _probe(probe: Probe | None, agent: Any) -> tuple[float | None, dict[str, Any] | None]:
    """``(accuracy, details)`` of the agent's backbone, or ``(None, None)`` without backbone or probe.

    The probe may return a number or a dict; from a dict, ``top1`` (``safeadapt_bench.backbones``)
    or ``accuracy`` is the accuracy and the whole dict is kept as details.
    """
    backbone = agent.backbone() if hasattr(agent, "backbone") else None
    if probe is None or backbone is None:
        return None, None
    value = probe(backbone)
    if isinstance(value, dict):
        acc = value.get("top1", value.get("accuracy"))
        return (None if acc is None else float(acc)), dict(value)
    return float(value), None


def dataset_summary(dataset: Any) -> dict[str, Any] | None:
    """What a record keeps of the offline logs a cell pre-trained on (``None`` without logs).

    For a Minari dataset written by ``safeadapt_bench.data``: its id, the episodes given to the agent,
    and the behaviour policy's success rate, cost rate and mean episode cost over the whole
    collection (the expert's reference figures). For any other dataset, its type.
    """
    if dataset is None:
        return None
    if hasattr(dataset, "summary") and hasattr(dataset, "parts"):  # MixedLogs
        return dataset.summary()
    storage = getattr(dataset, "storage", None)
    meta = getattr(storage, "metadata", None) or {}
    info = meta.get("safeadapt") or {}
    if not info:
        return {"type": type(dataset).__name__}
    return {
        "id": meta.get("dataset_id"),
        "episodes": len(dataset),
        "collected_episodes": info.get("episodes"),
        "policy": info.get("policy"),
        "robot": (info.get("env_kwargs") or {}).get("robot"),
        **{k: info.get(k) for k in ("success_rate", "cost_rate", "mean_episode_cost", "mean_return")},
    }


def _close(env: Any) -> None:
    try:
        env.close()
    except Exception:  # noqa: BLE001 - closing must not hide the cell's result
        pass


def _make_filmable(make_env: EnvFactory, env_id: str, kwargs: dict[str, Any], videos: bool,
                   notes: list[str]) -> Any:
    """An evaluation env that renders ``rgb_array`` frames when ``videos`` (and the factory allows it)."""
    if videos:
        try:
            return make_env(env_id, render_mode="rgb_array", **kwargs)
        except TypeError as err:
            notes.append(f"no video of {env_id}: its env factory does not take render_mode ({err})")
    return make_env(env_id, **kwargs)


def _encode_videos(cell_id: str, films: dict[str, tuple[Film, int]], fps: float) -> tuple[list, dict]:
    """``(videos, files)``: the record's video list and the MP4 bytes by path relative to the results."""
    from safeadapt_bench.harness.video import encode_mp4

    videos, files = [], {}
    for split, (film, seed) in films.items():
        for camera, frames in film.frames.items():
            path = f"videos/{cell_id}/{split}-{camera}.mp4"
            files[path] = encode_mp4(frames, film.fps(fps))
            videos.append({"split": split, "camera": camera, "path": path, "episode_seed": seed,
                           "frames": len(frames), "fps": film.fps(fps), "every": film.every})
    return videos, files


def run_cell(
    spec: CellSpec,
    *,
    env_factory: EnvFactory | str | None = None,
    dataset_provider: DatasetProvider | str | None = None,
    probe: Probe | str | None = None,
    on_progress: Callable[[str], None] | None = None,
    checkpoint_dir: str | None = None,
    videos: bool = True,
    device: str = "auto",
) -> dict[str, Any]:
    """Run one cell and return its record (a JSON-ready dict; see ``safeadapt_bench.harness.records``).

    Arguments override the corresponding import paths in ``spec.settings``. With
    ``settings.save_agent``, the adapted agent is saved under ``checkpoint_dir/<cell_id>/agent``.
    With ``videos``, the first episode of each final evaluation is filmed (front camera, and wrist
    where the env has one): ``record["videos"]`` lists them and ``record["_files"]`` holds their MP4
    bytes by path, which :meth:`ResultsDir.write` stores next to the record. ``device`` (``"auto"``,
    ``"cpu"``, ``"cuda[:N]"``) is resolved here and given to agents whose constructor takes a ``device``
    keyword (unless ``agent_kwargs`` names one); ``provenance.device`` states it (``None``: the agent
    takes none).
    """
    t_cell = time.perf_counter()
    s, task = spec.settings, spec.task
    say = on_progress or (lambda msg: None)
    make_env = resolve_env_factory(env_factory if env_factory is not None else s.env_factory)
    provider = dataset_provider if dataset_provider is not None else s.dataset_provider
    provide = resolve_dataset_provider(provider) if s.dataset_episodes > 0 else None
    probe_fn, probe_note = resolve_probe(probe if probe is not None else s.probe)
    agent_cls = resolve_agent(spec.agent_class_spec)

    train_id, heldout_id = task.env_id("train"), task.env_id("heldout")
    train_env = make_env(train_id, **task.env_kwargs_for())
    envs = [train_env]
    try:
        check_obs_keys(
            agent_cls,
            train_env.observation_space,
            f"{train_id} (obs_mode={task.obs_mode!r}, robot={task.adapt_robot!r})",
        )
        agent_kwargs, used_device = {**suite_agent_kwargs(agent_cls, s), **spec.agent_kwargs}, None
        if takes_device(agent_cls):
            used_device = resolve_device(agent_kwargs.setdefault("device", device))
            agent_kwargs["device"] = used_device
        agent = agent_cls(train_env.observation_space, train_env.action_space, seed=spec.seed, **agent_kwargs)
        trainable, total = (int(x) for x in agent.trainable_parameters())
        has_backbone = hasattr(agent, "backbone") and agent.backbone() is not None
        probe_initial, probe_initial_details = _probe(probe_fn, agent)

        say("dataset")
        t0 = time.perf_counter()
        # dataset_episodes = 0: no offline logs; pretrain() receives None.
        dataset = None
        if provide is not None:  # settings.log_mix: safety agents get mixed logs (harness.safety)
            dataset = provide_logs(provide, task, s, agent)
        dataset_seconds = time.perf_counter() - t0

        say("pretrain")
        t0 = time.perf_counter()
        pretrain_stats = agent.pretrain(
            dataset, Budget(updates=s.pretrain_updates, wall_seconds=s.pretrain_seconds)
        )
        pretrain_seconds = time.perf_counter() - t0

        # ---- adaptation with periodic evaluation ----
        say("adapt")
        budget = Budget(env_steps=s.adapt_env_steps, wall_seconds=s.adapt_seconds)
        monitor = SafetyMonitor(
            train_env,
            veto_source=getattr(agent, "pop_veto", None),
            seed=spec.seed,
            max_steps=2 * s.adapt_env_steps + 10_000,
        )
        video_notes: list[str] = []
        eval_env = _make_filmable(make_env, train_id, task.env_kwargs_for(), videos, video_notes)
        envs.append(eval_env)
        curve: dict[str, list[Any]] = {"env_steps": [], **{k: [] for k in CURVE_SERIES}}
        curve_seconds: list[float] = []
        clock = {"eval": 0.0, "next": 0, "t0": time.perf_counter(), "agent": None}
        multiplier = MultiplierTrace()

        def adapt_seconds() -> float:
            return time.perf_counter() - clock["t0"] - clock["eval"]

        def eval_point() -> None:
            say(f"adapt {monitor.total_steps}/{s.adapt_env_steps} env steps, evaluating")
            t = time.perf_counter()
            wall = adapt_seconds()
            res = evaluate(
                agent, eval_env, s.eval_episodes, _SEED_CURVE + 1000 * spec.seed, category_offset=spec.seed
            )
            curve["env_steps"].append(monitor.total_steps)
            for k in CURVE_SERIES:
                curve[k].append(res[k])
            curve_seconds.append(wall)
            clock["eval"] += time.perf_counter() - t
            say(f"adapt {monitor.total_steps}/{s.adapt_env_steps} env steps: success {res['success']:.2f}, "
                f"episodic cost {res['episodic_cost']:.2f}")

        def callback(agent_stats: dict[str, Any] | None = None) -> bool:
            if agent_stats is not None:
                clock["agent"] = agent_stats
                multiplier.note(monitor.total_steps, agent_stats)
            if monitor.total_steps >= clock["next"]:
                eval_point()
                clock["next"] = (monitor.total_steps // s.eval_every + 1) * s.eval_every
            return not (
                monitor.total_steps >= s.adapt_env_steps
                or (s.adapt_seconds is not None and adapt_seconds() >= s.adapt_seconds)
            )

        if s.eval_episodes:
            eval_point()  # success after pre-training, at 0 env steps
            clock["next"] = s.eval_every
        clock["t0"], clock["eval"] = time.perf_counter(), 0.0
        if hasattr(agent, "deploy_on"):
            agent.deploy_on(monitor)
        adapt_stats = agent.adapt(monitor, budget, callback)
        adapt_total = adapt_seconds()
        if s.eval_episodes and (not curve["env_steps"] or curve["env_steps"][-1] < monitor.total_steps):
            eval_point()
        # Budget-limited agents sometimes stop mid-episode; unfinished episodes are counted as such.
        monitor.finish_episode()
        learning = summarize(monitor.episodes, monitor.stats, cost_limit_of(train_env), monitor.term_steps)
        ttt = time_to_threshold(
            curve["env_steps"],
            curve_seconds,
            curve["success"],
            s.success_threshold,
            monitor.total_steps,
            adapt_total,
        )

        # ---- final evaluation ----
        say("evaluate")
        t0 = time.perf_counter()
        seeds = {"train": _SEED_TRAIN, "heldout": _SEED_HELDOUT, "source_robot": _SEED_SOURCE}
        seeds = {k: v + 1000 * spec.seed for k, v in seeds.items()}
        films = {k: (Film(), v) for k, v in seeds.items()} if videos else {}
        film = lambda split: films[split][0] if videos else None  # noqa: E731
        final_train = evaluate(agent, eval_env, s.final_eval_episodes, seeds["train"], film=film("train"))
        heldout_env = _make_filmable(make_env, heldout_id, task.env_kwargs_for(), videos, video_notes)
        envs.append(heldout_env)
        final_heldout = evaluate(agent, heldout_env, s.final_eval_episodes, seeds["heldout"],
                                 film=film("heldout"))
        final_source = None
        if task.target_robot:
            source_env = _make_filmable(make_env, train_id, task.env_kwargs_for(task.robot), videos, video_notes)
            envs.append(source_env)
            final_source = evaluate(agent, source_env, s.final_eval_episodes, seeds["source_robot"],
                                    film=film("source_robot"))
        t_video = time.perf_counter()
        if any(f.frames for f, _ in films.values()):
            say("video")
        video_list, video_files = _encode_videos(spec.cell_id, films, eval_env.metadata.get("render_fps", 20))
        video_seconds = time.perf_counter() - t_video + sum(f.seconds for f, _ in films.values())
        final_seconds = time.perf_counter() - t0
        probe_final, probe_final_details = _probe(probe_fn, agent)
        checkpoint = None
        if s.save_agent and checkpoint_dir:
            os.makedirs(os.path.join(checkpoint_dir, spec.cell_id), exist_ok=True)
            agent.save(os.path.join(checkpoint_dir, spec.cell_id, "agent"))
            checkpoint = f"agents/{spec.cell_id}/agent"
    finally:
        for env in envs:
            _close(env)

    deploy = pooled(final_train, final_heldout)
    notes = list(video_notes)
    if probe_fn is None and has_backbone:
        notes.append(f"forgetting not measured: {probe_note}")
    if monitor.total_steps > s.adapt_env_steps:
        notes.append(f"the agent took {monitor.total_steps} env steps for a budget of {s.adapt_env_steps}")
    metrics = {
        "success_train": final_train["success"],
        "success_heldout": final_heldout["success"],
        "generalisation": ratio(final_heldout["success"], final_train["success"]),
        "wrong_object_rate": deploy["wrong_object_rate"],
        "success_source_robot": final_source["success"] if final_source else None,
        "adapt_env_steps": monitor.total_steps,
        "adapt_steps_to_threshold": ttt["steps"],
        "adapt_threshold_censored": int(ttt["censored"]),
        "safe_ratio_learning": learning["safe_ratio"],
        "safe_ratio_deployment": deploy["safe_ratio"],
        "episodic_cost_learning": learning["episodic_cost"],
        "episodic_cost_deployment": deploy["episodic_cost"],
        "violation_rate_learning": learning["violation_rate"],
        "violation_rate_deployment": deploy["violation_rate"],
        "violations_learning": learning["violations"],
        "veto_rate_learning": learning["veto_rate"],
        "veto_rate_deployment": deploy["veto_rate"],
        "trainable_params": trainable,
        "total_params": total,
        "trainable_fraction": ratio(trainable, total),
        "probe_initial": probe_initial,
        "probe_final": probe_final,
        "forgetting": (probe_initial - probe_final) if None not in (probe_initial, probe_final) else None,
        **safety_metrics(learning, [final_train, final_heldout], monitor.step_costs, pretrain_stats, adapt_stats),
    }
    agent_stats, agent_timing = split_volatile(
        {"pretrain": pretrain_stats, "adapt": adapt_stats, "last_callback": clock["agent"]})
    timing = {
        "agent_stats": agent_timing,
        "dataset_seconds": dataset_seconds,
        "pretrain_seconds": pretrain_seconds,
        "adapt_seconds": adapt_total,
        "adapt_seconds_to_threshold": ttt["seconds"],
        "eval_seconds": clock["eval"] + final_seconds,
        "video_seconds": video_seconds,
        "curve_wall_seconds": curve_seconds,
        "cell_seconds": time.perf_counter() - t_cell,
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "cell_id": spec.cell_id,
        "config": spec.to_dict(),
        "seed": spec.seed,
        "agent": {
            "name": spec.agent,
            "class": f"{agent_cls.__module__}:{agent_cls.__qualname__}",
            "uses_veto": bool(getattr(agent_cls, "uses_veto", False)),
            "required_obs_keys": list(getattr(agent_cls, "required_obs_keys", ())),
            "checkpoint": checkpoint,
        },
        "metrics": metrics,
        "curves": curve,
        "safety_curves": safety_curves(monitor.step_costs, multiplier),
        "evaluations": {
            "learning": learning,
            "train": final_train,
            "heldout": final_heldout,
            "source_robot": final_source,
            "probe": {"initial": probe_initial_details, "final": probe_final_details},
        },
        "dataset": dataset_summary(dataset),
        "agent_stats": agent_stats,
        "videos": video_list,
        "notes": notes,
        "timing": timing,
        "provenance": {**provenance(), "device": used_device, "mujoco_gl": os.environ.get("MUJOCO_GL")},
        "_files": video_files,
    }
