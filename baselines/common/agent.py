"""The base class of the four reference agents: the Agent interface over :class:`SafeSAC`.

Each agent is this class with some :class:`AgentConfig` fields fixed (``FIXED``). Observations reach
the policy with the instruction as CLIP token ids (``InstructionTokens``); the backbone is the
embedded default (or the open_clip model ``AgentConfig.backbone``), frozen unless ``train_backbone``.
The agent runs on ``device`` (``"auto"``: CUDA when torch sees a GPU, else CPU).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv

from safeadapt_bench.adapters import AdapterConfig
from safeadapt_bench.agents.base import AdaptCallback, Agent
from safeadapt_bench.agents.budget import Budget
from safeadapt_bench.agents.sb3 import HarnessCallback, SpacesEnv
from safeadapt_bench.baselines.common.config import AgentConfig
from safeadapt_bench.baselines.common.pretrain import PretrainSettings, pretrain
from safeadapt_bench.baselines.common.sac import SafeSAC, TunableExtractor
from safeadapt_bench.envs.wrappers import InstructionTokens
from safeadapt_bench.harness.devices import resolve_device

#: Default instruction length: the embedded backbone's text context (``Backbone.context_length``).
DEFAULT_CONTEXT_LENGTH = 24


class _StatsCallback(HarnessCallback):
    """Forwards each step to the harness with the model's latest training statistics."""

    def _on_step(self) -> bool:
        if self.meter.exhausted(env_steps=0):
            return False
        if self.harness_callback is None:
            return True
        return self.harness_callback(dict(self.model.safety_stats) or None) is not False


class ReferenceAgent(Agent):
    """A reference agent: SafeSAC on backbone features, configured by :class:`AgentConfig`.

    Args:
        observation_space, action_space, seed: see :class:`~safeadapt_bench.agents.Agent`.
        device: torch device, ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda[:N]"``;
            the harness passes the suite's or ``run --device``'s choice. Not part of :class:`AgentConfig`.
        **kwargs: :class:`AgentConfig` fields (those in ``FIXED`` cannot be changed).
    """

    required_obs_keys: ClassVar[tuple[str, ...]] = ("rgb", "depth", "proprio", "instruction")
    #: Config fields that define the agent.
    FIXED: ClassVar[dict[str, Any]] = {}
    #: Suite settings the harness passes as keyword arguments (``safeadapt_bench.harness.cell``).
    SUITE_SETTINGS: ClassVar[tuple[str, ...]] = ("false_veto_rate",)

    @property
    def wants_log_mix(self) -> bool:
        """Whether the harness should give this agent the suite's mixed logs (``settings.log_mix``)."""
        return bool(self.config.cost_critic and self.config.mixed_logs)

    def __init__(self, observation_space: Any, action_space: Any, *, seed: int = 0, device: str = "auto",
                 **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, seed=seed, **kwargs)
        self.device = resolve_device(device)
        clash = {k: v for k, v in kwargs.items() if k in self.FIXED and v != self.FIXED[k]}
        if clash:
            raise ValueError(f"{type(self).__name__} fixes {sorted(clash)} (to {self.FIXED}); pick another agent.")
        self.config = AgentConfig(**{**kwargs, **self.FIXED})
        self.uses_veto = self.config.veto  # type: ignore[misc] - per-instance refinement of the class flag
        self.model: SafeSAC | None = None
        if observation_space is not None:
            self._build(observation_space, action_space)

    # ------------------------------------------------------------------ construction
    def _tokens(self, env: gym.Env) -> InstructionTokens:
        return InstructionTokens(env, context_length=self.config.context_length or DEFAULT_CONTEXT_LENGTH)

    def _policy_kwargs(self) -> dict[str, Any]:
        c = self.config
        adapter = None
        if c.adapter is not None:
            adapter = AdapterConfig(kind=c.adapter, rank=c.adapter_rank, bottleneck_dim=8 * c.adapter_rank,
                                    placement=c.adapter_placement)
        return dict(
            features_extractor_class=TunableExtractor,
            features_extractor_kwargs=dict(adapter=adapter, train_backbone=c.train_backbone, pool=c.pool,
                                           keypoints=c.keypoints, pool_tokens=c.pool_tokens,
                                           pool_embedding=c.pool_embedding,
                                           keypoint_features=c.keypoint_features,
                                           keypoint_depth=c.keypoint_depth, instruction=c.instruction,
                                           object_keypoints=c.object_keypoints,
                                           object_points=c.object_points,
                                           camera_calibration=c.camera_calibration,
                                           point_noise=c.point_noise, point_gate=c.point_gate,
                                           proprio=c.proprio,
                                           locate_with_adapters=c.locate_with_adapters,
                                           backbone=c.backbone, pretrained=c.backbone_pretrained),
            net_arch=list(c.net_arch),
        )

    def _build(self, observation_space: Any, action_space: Any) -> None:
        missing = [k for k in self.required_obs_keys if k not in getattr(observation_space, "spaces", {})]
        if missing:
            raise ValueError(f"{type(self).__name__} needs observation entries {list(self.required_obs_keys)}; "
                             f"missing {missing} in {observation_space} (use obs_mode='rgbd').")
        c = self.config
        self._tok = self._tokens(SpacesEnv(observation_space, action_space))
        stub = self._tok
        self.model = SafeSAC(
            "MultiInputPolicy", DummyVecEnv([lambda: stub]), seed=self.seed, device=self.device,
            learning_rate=c.learning_rate, buffer_size=c.buffer_size, batch_size=c.batch_size,
            learning_starts=c.learning_starts, train_freq=c.train_freq, gradient_steps=c.gradient_steps,
            gamma=c.gamma, ent_coef=c.ent_coef, policy_kwargs=self._policy_kwargs(),
            cost_critic=c.cost_critic, cost_gamma=c.cost_gamma, lagrangian=c.lagrangian,
            cost_limit=c.cost_limit, lagrange_lr=c.lagrange_lr, lagrange_init=c.lagrange_init,
            veto=c.veto, veto_threshold=c.veto_threshold, veto_candidates=c.veto_candidates,
            veto_uniform_candidates=c.veto_uniform_candidates, veto_choice=c.veto_choice,
            veto_report=self.note_veto, veto_enforce=c.veto_enforce, actor_lr=c.actor_learning_rate,
            **c.extra,
        )
        _quiet_logger(self.model)

    # ------------------------------------------------------------------ the interface
    def logged_frames(self, dataset: Any, augment: bool = False) -> Any:
        """Every step of ``dataset`` (an ``OfflineDataset``) as the policy sees it, the frozen part of the
        image path computed once (and cached; see ``baselines.common.frames``); ``augment`` adds the
        configured recoloured copies (``AgentConfig.colour_copies``)."""
        from safeadapt_bench.baselines.common.frames import concat_frames, logged_frames, tag_source
        from safeadapt_bench.data.mixed import MixedLogs

        keys = list(self.model.observation_space.spaces)
        ext = self.model.actor.features_extractor
        parts = dataset.parts if isinstance(dataset, MixedLogs) else [((dataset.info or {}).get("policy"), dataset)]
        return concat_frames([tag_source(logged_frames(ds, ext, keys, self._tok.tokens,
                                                       use_cache=self.config.cache_frames,
                                                       colour_copies=self.config.colour_copies if augment else 0),
                                         policy)
                              for policy, ds in parts])

    def pretrain(self, dataset: Any, budget: Budget) -> dict[str, Any]:
        """Behaviour cloning + InfoNCE + offline cost critic on the logs (each as configured); ``None`` skips."""
        if dataset is None:
            return {"updates": 0, "skipped": "no dataset"}
        from safeadapt_bench.data import MixedLogs, OfflineDataset, load, wrap

        if isinstance(dataset, str | os.PathLike):
            dataset = load(str(dataset))
        ds = dataset if isinstance(dataset, OfflineDataset | MixedLogs) else wrap(dataset)
        c = self.config
        train_ds, val_ds = ds.split(c.val_fraction)
        frames = frames_on(self.logged_frames(train_ds, augment=True), self.model.device)
        val = frames_on(self.logged_frames(val_ds), self.model.device) if val_ds is not None else None
        ext = self.model.actor.features_extractor
        if ext.extra_keys:
            extra = ext.extra_inputs(frames.obs)
            ext.set_normalization(extra.mean(0), extra.std(0))
        settings = PretrainSettings(
            contrastive=c.contrastive, behaviour_cloning=c.behaviour_cloning, cost_critic=c.cost_critic,
            window=c.window, updates=c.pretrain_updates, seconds=c.pretrain_seconds, batch_size=c.pretrain_batch_size,
            lr=c.pretrain_lr, temperature=c.temperature, seed=self.seed, reward_critic=c.critic_pretrain)
        stats = pretrain(self.model, frames, val, budget, settings)
        if c.bc_weight and c.behaviour_cloning:
            from safeadapt_bench.baselines.common.critic import bc_starts

            self.model.set_bc_anchor(frames, bc_starts(frames, frames.window_starts(c.window), c.window)[0],
                                     c.bc_weight, self.seed)
        stats["frames_cached"] = bool(frames.fingerprint)
        stats["frames_from_cache"] = frames.from_cache
        if c.cost_critic and stats.get("updates"):
            from safeadapt_bench.baselines.common.critic import calibrate_and_measure

            rate = None if c.fixed_threshold else c.false_veto_rate
            stats["critic"] = calibrate_and_measure(self.model, frames, val, c.window, rate)
        return stats

    def adapt(self, env: Any, budget: Budget, callback: AdaptCallback | None = None) -> dict[str, Any]:
        """SAC on ``env`` (the cost critic, multiplier and veto learn/act online as configured)."""
        self.deploy_on(env)
        wrapped = self._tokens(env)
        self.model.set_env(DummyVecEnv([lambda: wrapped]))
        steps = budget.env_steps if budget.env_steps is not None else 10**9
        before = self.model.num_timesteps
        vetoes0, decisions0 = self.model.veto_count, self.model.veto_decisions
        self.model.learn(steps, callback=_StatsCallback(callback, budget), reset_num_timesteps=False,
                         progress_bar=False)
        stats: dict[str, Any] = {"env_steps": int(self.model.num_timesteps - before),
                                 "updates": int(self.model._n_updates), **self.model.safety_stats}
        if self.config.veto:
            n = self.model.veto_decisions - decisions0
            stats["veto_rate"] = (self.model.veto_count - vetoes0) / n if n else 0.0
        if self.config.lagrangian:
            stats["lagrange_multiplier"] = self.model.lagrange_multiplier
        if self.config.cost_critic:
            from safeadapt_bench.baselines.common.critic import online_quality

            stats["critic_online"] = online_quality(self.model, self.config.window)
            stats["veto_threshold"] = float(self.model.veto_threshold)
            if not self.config.veto_enforce:
                stats["veto_shadow_count"] = int(self.model.veto_shadow_count)
        return stats

    def deploy_on(self, env: Any) -> None:
        """With ``object_points``, back-project through ``env``'s camera calibration from now on (another
        robot's wrist camera sits centimetres elsewhere; the points stay in the world frame). The harness
        calls this before the agent acts in an env; a user's own loop should too when it changes robot."""
        ext = self.model.actor.features_extractor
        own = getattr(getattr(env, "unwrapped", env), "camera_calibration", None)
        if getattr(ext, "object_points", False) and own is not None:
            ext.set_calibration(own())

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """The policy's action (after the veto, which reports through ``note_veto``, when enabled)."""
        action, _ = self.model.predict(self._tok.observation(obs), deterministic=deterministic)
        return np.asarray(action, dtype=np.float32).reshape(self.action_space.shape)

    def save(self, path: str) -> None:
        """A directory with ``sac.zip`` (SB3's file, incl. adapters, cost critic, multiplier) and ``agent.json``."""
        os.makedirs(path, exist_ok=True)
        self.model.save(os.path.join(path, "sac.zip"))
        with open(os.path.join(path, "agent.json"), "w") as f:
            json.dump({"class": type(self).__name__, "seed": self.seed, "config": self.config.to_dict()}, f)

    @classmethod
    def load(cls, path: str, device: str = "auto") -> ReferenceAgent:
        """Rebuild an agent written by :meth:`save`, on ``device`` (whatever device it was saved from)."""
        with open(os.path.join(path, "agent.json")) as f:
            meta = json.load(f)
        config = {k: v for k, v in meta["config"].items() if k not in cls.FIXED}
        agent = cls(None, None, seed=meta["seed"], device=device, **config)
        agent.model = SafeSAC.load(os.path.join(path, "sac.zip"), device=agent.device)
        agent.model.veto_report = agent.note_veto
        _quiet_logger(agent.model)
        agent.observation_space = agent.model.observation_space
        agent.action_space = agent.model.action_space
        agent._tok = agent._tokens(SpacesEnv(_untransposed(agent.model.observation_space), agent.action_space))
        return agent

    def trainable_parameters(self) -> tuple[int, int]:
        """Parameters that adaptation updates (actor incl. trainable backbone parts, critics) and all of them."""
        seen: dict[int, torch.nn.Parameter] = {}
        modules = [self.model.actor, self.model.critic]
        if self.model.cost_critic is not None:
            modules.append(self.model.cost_critic)
        for m in modules:
            for p in m.parameters():
                seen[id(p)] = p
        trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
        return int(trainable), int(sum(p.numel() for p in seen.values()))

    def backbone(self) -> Any:
        """The policy's backbone (with its adapters)."""
        return self.model.actor.features_extractor.backbone


def frames_on(frames: Any, device: Any) -> Any:
    """``frames`` (``LoggedFrames``) with what pre-training feeds the model on ``device``.

    Tokens, observations, actions, labels and costs move; the episode and step indices stay on the
    CPU, where pre-training builds its index tensors. On the CPU, ``frames`` itself is returned.
    """
    device = torch.device(device)
    if frames is None or device.type == "cpu":
        return frames
    return dataclasses.replace(
        frames,
        tokens={k: v.to(device) for k, v in frames.tokens.items()},
        obs={k: v.to(device) for k, v in frames.obs.items()},
        actions=frames.actions.to(device), labels=frames.labels.to(device), costs=frames.costs.to(device),
        rewards=None if frames.rewards is None else frames.rewards.to(device),
        variants=None if frames.variants is None else {k: v.to(device) for k, v in frames.variants.items()},
    )


def _untransposed(space: gym.spaces.Dict) -> gym.spaces.Dict:
    """The env-side Dict space (images channels-last) of an SB3 model's channel-first space; the
    instruction entry is left for :class:`InstructionTokens` to replace by text-free token ids."""
    out = {}
    for key, sub in space.spaces.items():
        if key in ("rgb", "wrist_rgb") and sub.shape[0] == 3:
            sub = gym.spaces.Box(0, 255, (*sub.shape[1:], 3), np.uint8)
        out[key] = sub
    return gym.spaces.Dict(out)


def _quiet_logger(model: SafeSAC) -> None:
    """A logger that writes nothing: SB3's default one makes an empty ``/tmp/SB3-<date>`` folder at every
    ``learn()`` (the harness keeps its own records)."""
    model.set_logger(Logger(folder=None, output_formats=[]))
