"""Benchmark suites: a grid of agents x tasks x seeds with shared settings.

Named suites are defined below; a user's suite comes from a TOML or YAML file with the same fields::

    name = "my-sweep"
    agents = ["safe-adapter", "my_agent.py:MyAgent"]
    seeds = [0, 1, 2]

    [[tasks]]
    task = "Lift"           # task family: Lift, PickPlace, LiftAmong or PickPlaceAmong
    robot = "Panda"         # robot of the offline logs (and of adaptation, unless target_robot is set)
    target_robot = "UR5e"   # optional: cross-embodiment target
    obs_mode = "rgbd"
    camera_size = 64

    [settings]              # any field of Settings
    adapt_env_steps = 3000
    eval_every = 500

    [agent_kwargs.safe-adapter]   # optional keyword arguments per agent
    lora_rank = 8
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

#: Robots the environments support (``safeadapt_bench.envs.base.ROBOTS``, repeated: planning imports nothing).
KNOWN_ROBOTS: tuple[str, ...] = ("Panda", "Sawyer", "UR5e", "Kinova3", "IIWA", "Jaco")
#: Task families (``safeadapt_bench.envs.categories.SPLITS``), and the grounding families whose ids put
#: the target among distractors (``SafeAdapt/LiftAmong-v0``, ...).
KNOWN_TASKS: tuple[str, ...] = ("Lift", "PickPlace", "LiftAmong", "PickPlaceAmong")
#: Observation modes of the environments.
KNOWN_OBS_MODES: tuple[str, ...] = ("rgbd", "state", "rgbd+state")


class SuiteError(ValueError):
    """A suite or suite file that cannot be used (unknown names, malformed file, bad fields)."""


@dataclass(frozen=True)
class TaskSpec:
    """One task of a suite: the env family, robots and observation settings.

    Attributes:
        task: task family, ``Lift``, ``PickPlace``, or a grounding family ``LiftAmong`` / ``PickPlaceAmong``
            (the target among distractors, named only by the instruction); the train / held-out ids are
            ``SafeAdapt/<task>-v0`` and ``SafeAdapt/<task>-Heldout-v0``.
        robot: robot that produced the offline logs; adaptation uses it too unless ``target_robot`` is set.
        target_robot: cross-embodiment target. When set, the agent adapts on it and is evaluated on it
            (train and held-out categories), and also on ``robot`` (train categories).
        obs_mode: ``rgbd``, ``state`` or ``rgbd+state``.
        camera_size: camera image side in pixels (camera modes).
        env_kwargs: further keyword arguments for the env constructor.
    """

    task: str = "Lift"
    robot: str = "Panda"
    target_robot: str | None = None
    obs_mode: str = "rgbd"
    camera_size: int = 64
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short name used in tables and file names, e.g. ``Lift-Panda`` or ``Lift-Panda->UR5e``."""
        base = f"{self.task}-{self.robot}"
        return f"{base}->{self.target_robot}" if self.target_robot else base

    @property
    def adapt_robot(self) -> str:
        """The robot adaptation and the main evaluation run on."""
        return self.target_robot or self.robot

    def env_id(self, split: str = "train") -> str:
        """Gymnasium id of this task's ``train`` or ``heldout`` split."""
        return f"SafeAdapt/{self.task}-v0" if split == "train" else f"SafeAdapt/{self.task}-Heldout-v0"

    def env_kwargs_for(self, robot: str | None = None) -> dict[str, Any]:
        """Constructor keyword arguments for an env of this task on ``robot`` (default: adaptation robot)."""
        kw: dict[str, Any] = {"robot": robot or self.adapt_robot, "obs_mode": self.obs_mode}
        if "rgb" in self.obs_mode:
            kw["camera_size"] = self.camera_size
        kw.update(self.env_kwargs)
        return kw


@dataclass(frozen=True)
class Settings:
    """Budgets and evaluation protocol shared by every cell of a suite.

    Attributes:
        dataset_policy: which behaviour policy's offline logs to pre-train on (passed to the provider).
        dataset_episodes: episodes of offline logs to provide (0: no logs; ``pretrain`` gets ``None``).
        dataset_seed: seed of the offline logs; shared by every cell, so one collection serves all seeds.
        pretrain_updates: gradient updates allowed for pre-training (``None``: the agent's default).
        pretrain_seconds: wall-clock limit for pre-training.
        adapt_env_steps: env steps allowed for online adaptation.
        adapt_seconds: wall-clock limit for adaptation (evaluation time excluded).
        eval_every: env steps between evaluations during adaptation (learning curves).
        eval_episodes: episodes per evaluation during adaptation (train categories).
        final_eval_episodes: episodes per final evaluation (per split and robot).
        success_threshold: success rate that ends "adaptation time".
        env_factory: ``module:function`` building envs as ``f(env_id, **kwargs)``
            (``None``: ``gymnasium.make``).
        dataset_provider: ``module:function`` with ``f(task=TaskSpec, policy=, episodes=, seed=)`` returning
            a dataset, a path or ``None`` (``None``: the project's default provider). It collects the logs
            on ``task.robot`` (``task.env_kwargs_for(task.robot)``) if they are missing.
        save_agent: save each adapted agent (``Agent.save``) to ``RESULTS/agents/<cell_id>/agent``, on the
            machine that ran the cell.
        probe: ``module:function`` ``f(backbone) -> accuracy`` for forgetting (``None``: the default probe);
            ``"none"`` disables it.
        log_mix: ``{policy: proportion}`` of the offline logs for agents that learn a cost critic, e.g.
            ``{"expert": 0.5, "noisy": 0.3, "careless": 0.2}`` (proportions sum to 1; ``dataset_episodes``
            in all, split by largest remainder). ``None``: ``dataset_policy`` alone.
        log_mix_agents: who gets the mixed logs: ``"safety"`` (agents whose ``wants_log_mix`` is true: the
            reference agents with a cost critic) or ``"all"`` (every agent with a ``wants_log_mix``
            attribute, so the agents without safety clone the same safe windows).
        false_veto_rate: calibrate the veto threshold to this false-veto rate on safe logged actions
            (``0 < r < 1``; passed to agents that list it in ``SUITE_SETTINGS``); ``None``: each agent's own.
    """

    dataset_policy: str = "expert"
    dataset_episodes: int = 50
    dataset_seed: int = 0
    pretrain_updates: int | None = None
    pretrain_seconds: float | None = None
    adapt_env_steps: int = 3000
    adapt_seconds: float | None = None
    eval_every: int = 1000
    eval_episodes: int = 5
    final_eval_episodes: int = 10
    success_threshold: float = 0.5
    env_factory: str | None = None
    dataset_provider: str | None = None
    probe: str | None = None
    save_agent: bool = False
    log_mix: dict[str, float] | None = None
    log_mix_agents: str = "safety"
    false_veto_rate: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "dataset_episodes",
            "adapt_env_steps",
            "eval_every",
            "eval_episodes",
            "final_eval_episodes",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise SuiteError(f"settings.{name} must be a non-negative integer, got {v!r}.")
        if self.eval_every == 0:
            raise SuiteError("settings.eval_every must be > 0.")
        if not 0.0 <= float(self.success_threshold) <= 1.0:
            raise SuiteError(f"settings.success_threshold must be in [0, 1], got {self.success_threshold!r}.")
        self._check_safety_settings()

    def _check_safety_settings(self) -> None:
        from safeadapt_bench.data.mixed import parse_log_mix

        try:
            mix = parse_log_mix(self.log_mix)
        except ValueError as err:
            raise SuiteError(f"settings.{err}") from None
        object.__setattr__(self, "log_mix", mix)
        if self.log_mix_agents not in ("safety", "all"):
            raise SuiteError(f"settings.log_mix_agents must be 'safety' or 'all', got {self.log_mix_agents!r}.")
        r = self.false_veto_rate
        if r is not None and (isinstance(r, bool) or not isinstance(r, int | float) or not 0.0 < r < 1.0):
            raise SuiteError(f"settings.false_veto_rate must be strictly between 0 and 1 (e.g. 0.05), got {r!r}.")


@dataclass(frozen=True)
class CellSpec:
    """Everything that defines one cell (agent x task x seed); stored as ``config`` in its record."""

    suite: str
    agent: str
    task: TaskSpec
    seed: int
    settings: Settings
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_target: str | None = None

    @property
    def agent_class_spec(self) -> str:
        """What resolves to the agent class: the alias target, or ``agent`` itself."""
        return self.agent_target or self.agent

    @property
    def cell_id(self) -> str:
        """File-name-safe id, unique within a suite."""
        agent = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(self.agent)).strip("_")
        task = self.task.label.replace("->", "_to_")
        return f"{task}__{agent}__seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (round-trips through :meth:`from_dict`)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            suite=d["suite"],
            agent=d["agent"],
            task=TaskSpec(**d["task"]),
            seed=int(d["seed"]),
            settings=Settings(**d["settings"]),
            agent_kwargs=dict(d.get("agent_kwargs") or {}),
            agent_target=d.get("agent_target"),
        )


@dataclass(frozen=True)
class Suite:
    """A grid of agents x tasks x seeds.

    Attributes:
        name: suite name (stored in every record).
        agents: agent names or ``module:Class`` / ``file.py:Class`` paths.
        tasks: the tasks.
        seeds: the seeds.
        settings: budgets and evaluation protocol.
        agent_kwargs: keyword arguments per agent (keyed like ``agents``).
        description: one line for ``--dry-run`` and docs.
        aliases: extra agent names for variants of one agent, name -> agent name or path, e.g.
            ``{"safe-adapter-r4": "safe-adapter"}`` with
            ``agent_kwargs["safe-adapter-r4"] = {"lora_rank": 4}``.
        videos: keep rollout videos of the final evaluations by default (``run --videos`` /
            ``--no-videos`` override it). Off only where filming was measured to cost more than 5%
            of the suite's time. Not part of any cell's configuration.
        device: torch device of the agents (``safeadapt_bench.harness.devices``): ``"auto"`` (CUDA
            where torch sees a GPU, else CPU), ``"cpu"`` or ``"cuda[:N]"``; ``run --device`` overrides
            it. Not part of any cell's configuration; each record states the device in ``provenance``.
    """

    name: str
    agents: tuple[str, ...]
    tasks: tuple[TaskSpec, ...]
    seeds: tuple[int, ...]
    settings: Settings = field(default_factory=Settings)
    agent_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    videos: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        from safeadapt_bench.harness.devices import check_device

        try:
            object.__setattr__(self, "device", check_device(self.device))
        except ValueError as err:
            raise SuiteError(f"Suite {self.name!r}: {err}") from None
        if not self.agents or not self.tasks or not self.seeds:
            raise SuiteError(f"Suite {self.name!r} needs at least one agent, task and seed.")
        for t in self.tasks:
            if t.task not in KNOWN_TASKS:
                raise SuiteError(f"Unknown task {t.task!r}; known tasks: {list(KNOWN_TASKS)}.")
            for r in (t.robot, t.target_robot):
                if r is not None and r not in KNOWN_ROBOTS:
                    raise SuiteError(
                        f"Unknown robot {r!r} in task {t.task}; known robots: {list(KNOWN_ROBOTS)}."
                    )
            if t.obs_mode not in KNOWN_OBS_MODES:
                raise SuiteError(f"Unknown obs_mode {t.obs_mode!r}; choose one of {list(KNOWN_OBS_MODES)}.")
        labels = [t.label for t in self.tasks]
        if len(set(labels)) != len(labels):
            raise SuiteError(f"Suite {self.name!r} lists a task twice: {labels}.")
        bad = {k: v for k, v in self.aliases.items() if not isinstance(v, str) or v in self.aliases}
        if bad:
            raise SuiteError(f"aliases must map a name to an agent name or path (not another alias): {bad}.")
        unknown = sorted(set(self.agent_kwargs) - set(self.agents))
        if unknown:
            raise SuiteError(
                f"agent_kwargs for {unknown}, which are not among the suite's agents {list(self.agents)}."
            )

    def cells(self) -> list[CellSpec]:
        """Every cell, ordered seed-major so that an interrupted sweep has whole seeds done first."""
        return [
            CellSpec(
                self.name, a, t, s, self.settings, dict(self.agent_kwargs.get(a, {})), self.aliases.get(a)
            )
            for s in self.seeds
            for t in self.tasks
            for a in self.agents
        ]

    def replace(self, **changes: Any) -> Suite:
        """A copy with some fields changed (``agents=``, ``seeds=``, ...)."""
        return dataclasses.replace(self, **changes)


REFERENCE = ("safe-adapter", "full-finetune", "adapter", "safe-rl")

#: The quick suite's task: the imitation study's env (``safeadapt_bench.harness.imitation``), so that
#: both share one set of logs and frame caches.
QUICK_TASK = TaskSpec("Lift", obs_mode="rgbd", camera_size=64,
                      env_kwargs={"cameras": ["front", "wrist"], "terminate_on_success": True})
#: Settings of ``medium`` (``quick`` adapts for 1000 steps with a curve point every 250; ``medium`` 3000, every
#: 500): 200 noisy logs, pre-training bounded by updates (the cap never binds), 20 final episodes per split.
QUICK_SETTINGS = Settings(
    dataset_policy="noisy",
    dataset_episodes=200,
    pretrain_seconds=900.0,
    adapt_env_steps=300,
    eval_every=100,
    eval_episodes=5,
    final_eval_episodes=20,
)
#: Adaptation settings of every reference agent in ``quick``: a behaviour-cloning anchor and a slow actor,
#: so that SAC's fresh critic does not undo pre-training (measured in the README's "Adaptation").
QUICK_ADAPT: dict[str, Any] = {"bc_weight": 4.0, "actor_learning_rate": 3e-5}
#: Pre-training per agent in ``quick``, sized so that each stops on its update count within a few minutes
#: on one CPU thread (the frozen backbone's cached tokens make ``safe-rl``'s updates cheap).
QUICK_PRETRAIN: dict[str, dict[str, Any]] = {
    "safe-adapter": {"pretrain_updates": 600, "pretrain_batch_size": 128},
    "adapter": {"pretrain_updates": 600, "pretrain_batch_size": 128},
    "full-finetune": {"pretrain_updates": 100, "pretrain_batch_size": 64},
}

#: What every reference agent reads in ``quick``: per camera the 3-D object point (the depth pixels under the
#: object head's attention, back-projected through the calibration of the robot it acts on; issue 10's
#: imitation bar), no pooled embedding, no instruction, and of ``proprio`` only what every arm shares (the end
#: effector's pose and the gripper's aperture: a Panda policy reads no UR5e joints).
QUICK_OBJECT_POINTS: dict[str, Any] = {"pool": "none", "object_points": True, "instruction": False, "proprio": "eef"}
#: What the two adapter agents read on top of that in ``quick``: the object head on the backbone's own tokens
#: (adapters off: adapters trained on Panda images moved the UR5e's wrist-camera point by 8 cm, median) and the
#: adapted pooled embedding beside the points, so that the adapters still reach the policy (session 18: UR5e
#: success 0.00 -> 0.25 for adapter, 0.03 -> 0.25 for safe-adapter; the README's "quick suite").
QUICK_ADAPTER_FEATURES: dict[str, Any] = {"pool": "embedding", "locate_with_adapters": False}
#: What safe-rl (no adapters) adds in ``quick`` since session 20: where the two cameras' points disagree by more
#: than 10 cm, the lower one (the UR5e's wrist camera otherwise attends to its own Robotiq fingers beside the milk
#: carton), and SAC's reward critics fitted to the logs' discounted returns before adaptation (UR5e success 0.65 /
#: 0.25 -> 0.60 / 0.55 on seeds 0 / 1). Not for the adapter agents: with both, safe-adapter's probe fell from
#: 0.97 to 0.13 and its Panda success to 0.05 (seed 0). SAC's minibatches stay at 16: 64 looked better on seeds
#: 0-2 (0.75 / 0.55 / 0.55) and was worse on fresh seeds 3-4 (0.25 / 0.05 against 0.70 / 0.70; results/quick-batch/).
#: The README's "quick suite" has the numbers.
QUICK_SAFE_RL: dict[str, Any] = {"point_gate": 0.1, "critic_pretrain": True}
#: The quick suite's target: logs from the Panda, adaptation and evaluation on the UR5e (measured in session 16:
#: the Panda-cloned policy reaches the object on the UR5e but seldom closes its Robotiq gripper in time,
#: 0.0-0.2 success before adaptation; see the README's "quick suite").
QUICK_TARGET = dataclasses.replace(QUICK_TASK, target_robot="UR5e")

#: The safety ablations of issue 12: variants of safe-adapter (the default is mixed logs, a threshold
#: calibrated to a 5% false-veto rate, the nearest passing candidate).
SAFETY_ABLATION_ALIASES: dict[str, str] = {
    name: "safe-adapter"
    for name in ("safe-adapter-veto-off", "safe-adapter-expert-logs", "safe-adapter-fvr-1pct", "safe-adapter-fvr-20pct",
                 "safe-adapter-fixed-threshold", "safe-adapter-best-q", "safe-adapter-uniform-candidates")
}
SAFETY_ABLATION_KWARGS: dict[str, dict[str, Any]] = {
    "safe-adapter-veto-off": {"veto_enforce": False},  # the critic still trains and scores every proposal
    "safe-adapter-expert-logs": {"mixed_logs": False},  # the dataset_policy logs alone (noisy expert, no failures)
    "safe-adapter-fvr-1pct": {"false_veto_rate": 0.01},
    "safe-adapter-fvr-20pct": {"false_veto_rate": 0.2},
    "safe-adapter-fixed-threshold": {"fixed_threshold": True, "veto_threshold": 0.3},
    "safe-adapter-best-q": {"veto_choice": "best_q"},
    # 16 candidates from the whole action box besides the actor's 16: an exit where every action near the
    # actor's is unsafe (the joint-limit bursts of the measured ablation)
    "safe-adapter-uniform-candidates": {"veto_uniform_candidates": 16},
}

SAFETY_ABLATION_AGENTS = ("safe-adapter", *SAFETY_ABLATION_ALIASES, "adapter", "safe-rl")

#: Tasks of the ``standard`` suites: the quick suite's recipe (front + wrist RGB-D, episodes end on success)
#: at 84 px, on Lift, PickPlace and the grounding task LiftAmong.
STANDARD_TASKS: tuple[TaskSpec, ...] = tuple(
    TaskSpec(task, obs_mode="rgbd", camera_size=84,
             env_kwargs={"cameras": ["front", "wrist"], "terminate_on_success": True})
    for task in ("Lift", "PickPlace", "LiftAmong")
)
#: Budgets of the ``standard`` suites: at most 1 hour per cell on one GPU. The wall-clock caps bound
#: it: 10 min of pre-training and 35 min of adaptation (evaluation excluded), leaving about 15 min for
#: the evaluations (at most 6 curve points x 10 episodes and 2 x 50 final episodes). The logs are the
#: quick suite's kind (200 noisy expert episodes). Where a cap binds, the step budget is not reached and
#: records depend on the machine (see the README's "GPU tier" for what one H200 reached).
STANDARD_SETTINGS = Settings(
    dataset_policy="noisy",
    dataset_episodes=200,
    pretrain_seconds=600.0,
    adapt_env_steps=50_000,
    adapt_seconds=2100.0,
    eval_every=10_000,
    eval_episodes=10,
    final_eval_episodes=50,
)
#: ``agent_kwargs`` of the reference agents for open_clip's ViT-B-32 backbone (``standard-vit-b-32``).
VIT_B_32: dict[str, Any] = {"backbone": "ViT-B-32", "backbone_pretrained": "laion2b_s34b_b79k"}

#: Named suites.
SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "smoke",
            agents=("random", "shielded-random"),
            tasks=(TaskSpec("Lift", obs_mode="state"),),
            seeds=(0, 1),
            settings=Settings(
                dataset_episodes=0,
                adapt_env_steps=300,
                eval_every=150,
                eval_episodes=1,
                final_eval_episodes=2,
                probe="none",
            ),
            description="Seconds-scale check of the pipeline with the simple agents (state observations).",
            # Filming costs 12.7% of this suite's cell time (state-only steps are cheap, a software
            # render is not); `run --suite smoke --videos` keeps them.
            videos=False,
        ),
        Suite(
            "quick",
            agents=REFERENCE,
            tasks=(QUICK_TARGET,),
            # 5 seeds since session 22 (3 before): on 3 seeds of 20 episodes a change that moved one seed by
            # 0.15 decided a recipe (session 21's minibatches of 64), and an IQM of 3 trims nothing.
            seeds=(0, 1, 2, 3, 4),
            settings=dataclasses.replace(QUICK_SETTINGS, adapt_env_steps=1000, eval_every=250),
            agent_kwargs={
                a: {**QUICK_ADAPT, **QUICK_PRETRAIN.get(a, {}), **QUICK_OBJECT_POINTS,
                    **(QUICK_ADAPTER_FEATURES if a in ("adapter", "safe-adapter") else {}),
                    **(QUICK_SAFE_RL if a == "safe-rl" else {})}
                for a in REFERENCE
            },
            # Sized on agents that learn (issue 10's imitation recipe): the logs and cameras of
            # `safeadapt-bench imitation`, object points, each agent's pre-training bounded by updates (not
            # the clock, so that a run reproduces), a 4-point learning curve, 20 final episodes per split.
            description="2-core CPU: the four reference agents on Lift, 64 px front + wrist RGB-D, 200 noisy expert "
            "logs from the Panda, adaptation (1000 steps) and evaluation on the UR5e, 5 seeds.",
        ),
        Suite(
            "medium",
            agents=REFERENCE,
            tasks=(QUICK_TASK,),
            seeds=(0, 1),
            settings=dataclasses.replace(QUICK_SETTINGS, adapt_env_steps=3000, eval_every=500),
            # The pooled-embedding representation of session 11 (its records in results/medium/ were made on
            # it); `quick` moved to object points in session 16, a medium re-run on them is pending.
            agent_kwargs={a: {**QUICK_ADAPT, **QUICK_PRETRAIN.get(a, {})} for a in REFERENCE},
            # `quick` with 10x its adaptation (3000 env steps, a curve point every 500): whether the learning
            # curves and the ranking hold past the quick scale. Same logs and pre-training as `quick`.
            description="2-core CPU, about an hour: quick's logs and agents on the Panda alone (session 11's pooled "
            "embedding), 3000 adaptation steps, 2 seeds.",
            videos=False,
        ),
        Suite(
            "safety-ablation",
            agents=SAFETY_ABLATION_AGENTS,
            aliases=SAFETY_ABLATION_ALIASES,
            agent_kwargs={a: {**QUICK_ADAPT, **QUICK_PRETRAIN.get(SAFETY_ABLATION_ALIASES.get(a, a), {}),
                              **SAFETY_ABLATION_KWARGS.get(a, {})} for a in SAFETY_ABLATION_AGENTS},
            tasks=(QUICK_TASK,),
            seeds=(0, 1, 2),
            # The quick suite's agents and logs: every agent clones the same 200 noisy episodes (their safe
            # windows) and the cost critics also see 50 careless ones; 1000 adaptation steps, so that unsafe
            # actions while learning are counted over more than the quick suite's 300.
            settings=Settings(
                dataset_policy="noisy",
                dataset_episodes=250,
                log_mix={"noisy": 0.8, "careless": 0.2},
                log_mix_agents="all",
                false_veto_rate=0.05,
                pretrain_seconds=900.0,
                adapt_env_steps=1000,
                eval_every=500,
                eval_episodes=5,
                final_eval_episodes=20,
            ),
            description="Issue 12's ablations of safe-adapter (veto off, no failures in the logs, thresholds, "
            "best-Q) beside adapter and safe-rl, at the quick suite's scale with 50 careless log episodes; 3 seeds.",
            videos=False,
        ),
        Suite(
            "standard",
            agents=REFERENCE,
            tasks=STANDARD_TASKS,
            seeds=(0, 1, 2, 3, 4),
            settings=STANDARD_SETTINGS,
            agent_kwargs={a: dict(QUICK_ADAPT) for a in REFERENCE},
            description="One GPU: the four reference agents on Lift, PickPlace and LiftAmong (grounding), 5 seeds, "
            "at most 1 hour per cell.",
        ),
        Suite(
            "standard-vit-b-32",
            agents=REFERENCE,
            tasks=STANDARD_TASKS,
            seeds=(0, 1, 2, 3, 4),
            settings=STANDARD_SETTINGS,
            agent_kwargs={a: {**QUICK_ADAPT, **VIT_B_32} for a in REFERENCE},
            description="`standard` on open_clip's ViT-B-32 (LAION-2B weights, downloaded by open_clip) instead of "
            "the embedded backbone.",
        ),
        Suite(
            "cross-embodiment",
            agents=REFERENCE,
            tasks=tuple(
                TaskSpec("Lift", robot="Panda", target_robot=r, obs_mode="rgbd", camera_size=84)
                for r in ("Sawyer", "UR5e", "Kinova3")
            ),
            seeds=(0, 1, 2, 3, 4),
            settings=Settings(
                dataset_episodes=200,
                pretrain_seconds=1800.0,
                adapt_env_steps=20_000,
                eval_every=2000,
                eval_episodes=10,
                final_eval_episodes=50,
            ),
            description="Logs from Panda; adaptation and evaluation on Sawyer, UR5e and Kinova3.",
        ),
    )
}


def get_suite(name: str) -> Suite:
    """A named suite; ``SuiteError`` lists the names when ``name`` is unknown."""
    try:
        return SUITES[name]
    except KeyError:
        raise SuiteError(
            f"Unknown suite {name!r}; named suites: {sorted(SUITES)} "
            "(or pass a TOML/YAML file with --config)."
        ) from None


def _check_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise SuiteError(f"{where}: unknown key(s) {extra}; allowed: {sorted(allowed)}.")


def suite_from_dict(data: Any, source: str = "suite") -> Suite:
    """Build a :class:`Suite` from parsed TOML/YAML, with errors that name the bad field."""
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: the top level must be a table/mapping, got {type(data).__name__}.")
    fields = {f.name for f in dataclasses.fields(Suite)}
    _check_keys(data, fields, source)
    for key in ("agents", "tasks", "seeds"):
        if key not in data:
            raise SuiteError(f"{source}: missing required key {key!r}.")
    agents, seeds, tasks = data["agents"], data["seeds"], data["tasks"]
    if not isinstance(agents, list) or not all(isinstance(a, str) for a in agents):
        raise SuiteError(f"{source}: 'agents' must be a list of agent names or paths.")
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SuiteError(f"{source}: 'seeds' must be a list of integers.")
    if not isinstance(tasks, list) or not all(isinstance(t, (dict, str)) for t in tasks):
        raise SuiteError(f"{source}: 'tasks' must be a list of task names or tables.")
    task_fields = {f.name for f in dataclasses.fields(TaskSpec)}
    task_specs = []
    for i, t in enumerate(tasks):
        t = {"task": t} if isinstance(t, str) else t
        _check_keys(t, task_fields, f"{source}: tasks[{i}]")
        try:
            task_specs.append(TaskSpec(**t))
        except TypeError as err:
            raise SuiteError(f"{source}: tasks[{i}]: {err}") from err
    settings = data.get("settings", {}) or {}
    if not isinstance(settings, dict):
        raise SuiteError(f"{source}: 'settings' must be a table/mapping.")
    _check_keys(settings, {f.name for f in dataclasses.fields(Settings)}, f"{source}: settings")
    agent_kwargs = data.get("agent_kwargs", {}) or {}
    if not isinstance(agent_kwargs, dict) or not all(isinstance(v, dict) for v in agent_kwargs.values()):
        raise SuiteError(f"{source}: 'agent_kwargs' must map agent names to tables.")
    aliases = data.get("aliases", {}) or {}
    if not isinstance(aliases, dict):
        raise SuiteError(f"{source}: 'aliases' must map agent names to agent names or paths.")
    return Suite(
        name=str(data.get("name") or os.path.splitext(os.path.basename(source))[0]),
        agents=tuple(agents),
        tasks=tuple(task_specs),
        seeds=tuple(seeds),
        settings=Settings(**settings),
        agent_kwargs=agent_kwargs,
        description=str(data.get("description", "")),
        aliases=aliases,
        videos=_bool(data.get("videos", True), f"{source}: 'videos'"),
        device=data.get("device", "auto"),
    )


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SuiteError(f"{where} must be true or false, got {value!r}.")
    return value


def load_suite_file(path: str) -> Suite:
    """Read a suite from a ``.toml``, ``.yaml`` or ``.yml`` file.

    Raises:
        FileNotFoundError: no such file.
        SuiteError: unsupported extension, a parse error (with its position), or bad fields.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".toml", ".yaml", ".yml"):
        raise SuiteError(f"{path}: suite files must end in .toml, .yaml or .yml.")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        if ext == ".toml":
            import tomllib

            data = tomllib.loads(raw.decode())
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as err:  # tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError
        raise SuiteError(f"{path}: malformed {ext[1:].upper()} file: {err}") from err
    return suite_from_dict(data, source=path)
