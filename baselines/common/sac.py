"""The shared RL core: stable-baselines3's SAC with an optional cost critic, Lagrange multiplier and veto.

:class:`SafeSAC` subclasses ``stable_baselines3.SAC``. It keeps SAC's rollout collection, replay, entropy
tuning and saving, and replaces ``train`` by one that computes each batch's features once (SB3 would
run the backbone five times per gradient step) and adds, when enabled:

* a cost critic ``Q_c(s, a)`` in ``[0, 1]`` (discounted cost rate, fitted by TD on ``info["cost"]``);
* a Lagrange multiplier ``lambda`` (SAC-Lagrangian): ``actor_loss += lambda * Q_c(s, pi(s))`` and
  ``lambda`` rises while the estimated cost rate is above ``cost_limit``;
* a candidate-sampling veto applied to every executed action, in learning (``_sample_action``) and
  in deployment (``predict``);
* a behaviour-cloning anchor (TD3+BC's remedy for the collapse of a cloned policy while the critic
  warms up): ``actor_loss += bc_weight * mean|Q| * BC(logged frames)``, on a batch of the
  pre-training logs at every gradient step (:meth:`SafeSAC.set_bc_anchor`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.utils import polyak_update
from torch import nn

from safeadapt_bench.features import BackboneExtractor


class TunableExtractor(BackboneExtractor):
    """:class:`BackboneExtractor` that can also make every backbone weight trainable (full fine-tuning).

    Args:
        train_backbone: unfreeze the whole backbone after loading (adapters, if any, stay trainable).
        **kwargs: those of :class:`BackboneExtractor`.
    """

    def __init__(self, observation_space: Any, train_backbone: bool = False, **kwargs: Any) -> None:
        super().__init__(observation_space, **kwargs)
        if train_backbone:
            self.backbone.freeze(False)


class CostSamples(NamedTuple):
    """A replay minibatch with the step costs (``(B, 1)``)."""

    observations: dict[str, torch.Tensor]
    actions: torch.Tensor
    next_observations: dict[str, torch.Tensor]
    dones: torch.Tensor
    rewards: torch.Tensor
    costs: torch.Tensor


class CostReplayBuffer(DictReplayBuffer):
    """SB3's ``DictReplayBuffer`` that also stores ``info["cost"]`` of every transition."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.costs = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)

    def add(self, obs, next_obs, action, reward, done, infos) -> None:  # noqa: ANN001 - SB3 signature
        self.costs[self.pos] = [float(info.get("cost", 0.0)) for info in infos]
        super().add(obs, next_obs, action, reward, done, infos)

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> CostSamples:  # type: ignore[override]
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        obs = {k: self.to_torch(v[batch_inds, env_indices]) for k, v in self.observations.items()}
        nxt = {k: self.to_torch(v[batch_inds, env_indices]) for k, v in self.next_observations.items()}
        done = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        return CostSamples(
            observations=obs,
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations=nxt,
            dones=self.to_torch(done).reshape(-1, 1),
            rewards=self.to_torch(self.rewards[batch_inds, env_indices].reshape(-1, 1)),
            costs=self.to_torch(self.costs[batch_inds, env_indices].reshape(-1, 1)),
        )


class CostCritic(nn.Module):
    """``Q_c(features, action)``: the predicted discounted cost rate, in ``[0, 1]`` (a sigmoid)."""

    def __init__(self, features_dim: int, action_dim: int, net_arch: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        last = features_dim + action_dim
        for width in net_arch:
            layers += [nn.Linear(last, width), nn.ReLU()]
            last = width
        out = nn.Linear(last, 1)
        nn.init.constant_(out.bias, -3.0)  # untrained, it predicts "safe" (rate ~0.05): no veto before any data
        layers.append(out)
        self.net = nn.Sequential(*layers)

    def logits(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid outputs ``(B, 1)``."""
        return self.net(torch.cat([features, actions], dim=-1))

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(features, actions))


class SafeSAC(SAC):
    """SAC with an optional cost critic, Lagrange multiplier and veto (see the module docstring).

    Args (besides SAC's; the policy must share its features extractor between actor and critic):
        cost_critic: learn ``Q_c``.
        cost_gamma: discount of ``Q_c``.
        lagrangian: add the Lagrangian penalty and learn the multiplier (needs ``cost_critic``).
        cost_limit: target cost rate of the Lagrangian.
        lagrange_lr: learning rate of the multiplier.
        lagrange_init: initial multiplier.
        veto: filter executed actions through :meth:`shield` (needs ``cost_critic``).
        veto_threshold: highest predicted cost rate an executed action may have.
        veto_candidates: actions sampled from the actor as alternatives to the proposed one.
        veto_uniform_candidates: actions drawn uniformly from the action box besides those: moves the
            actor would not propose, such as turning back from a joint limit.
        veto_choice: which passing candidate replaces a vetoed action: ``"nearest"`` to the proposal
            (least intervention) or ``"best_q"`` (highest reward critic).
        veto_report: called with each veto decision (``Agent.note_veto``); not saved.
        veto_enforce: replace vetoed actions. ``False`` is the "veto off" ablation: the critic still
            learns and scores every proposal (``veto_shadow_count`` counts those it would veto), but the
            proposal is executed and no veto is reported.
        actor_lr: Adam learning rate of the actor while adapting (``None``: SAC's ``learning_rate``, as
            for the critics).

    While learning, the cost critic's score of every executed action is kept (``online_scores``, with the
    step's ``online_costs`` and ``online_dones``) for the critic's online quality
    (``baselines.common.critic.online_quality``); these lists are not saved.
    """

    def __init__(
        self,
        *args: Any,
        cost_critic: bool = False,
        cost_gamma: float = 0.6,
        lagrangian: bool = False,
        cost_limit: float = 0.05,
        lagrange_lr: float = 0.01,
        lagrange_init: float = 0.1,
        veto: bool = False,
        veto_threshold: float = 0.3,
        veto_candidates: int = 16,
        veto_uniform_candidates: int = 0,
        veto_choice: str = "nearest",
        veto_report: Callable[[bool], None] | None = None,
        veto_enforce: bool = True,
        actor_lr: float | None = None,
        **kwargs: Any,
    ) -> None:
        if (lagrangian or veto) and not cost_critic:
            raise ValueError("SafeSAC: lagrangian and veto need cost_critic=True.")
        self.use_cost_critic, self.cost_gamma = cost_critic, cost_gamma
        self.lagrangian, self.cost_limit = lagrangian, cost_limit
        self.lagrange_lr, self.lagrange_init = lagrange_lr, lagrange_init
        self.veto, self.veto_threshold, self.veto_candidates = veto, veto_threshold, veto_candidates
        if veto_choice not in ("nearest", "best_q"):
            raise ValueError(f"veto_choice must be 'nearest' or 'best_q', got {veto_choice!r}.")
        if veto_candidates < 0 or veto_uniform_candidates < 0:
            raise ValueError(f"veto_candidates and veto_uniform_candidates must be >= 0, got {veto_candidates} and "
                             f"{veto_uniform_candidates}.")
        self.veto_uniform_candidates = int(veto_uniform_candidates)
        self.veto_choice = veto_choice
        self.veto_report = veto_report
        self.veto_count, self.veto_decisions = 0, 0
        self.veto_enforce, self.veto_shadow_count = bool(veto_enforce), 0
        if actor_lr is not None and not actor_lr >= 0:
            raise ValueError(f"actor_lr must be >= 0 (or None: the learning rate), got {actor_lr}.")
        self.actor_lr = actor_lr
        self.online_scores: list[float] = []
        self.online_costs: list[float] = []
        self.online_dones: list[bool] = []
        self._last_score: float | None = None
        #: ``(frames, starts, weight)`` of the behaviour-cloning anchor (:meth:`set_bc_anchor`); not saved.
        self.bc_anchor: tuple[Any, torch.Tensor, float] | None = None
        #: Set by pre-training (behaviour cloning): the actor then acts from step 0, not uniform noise.
        self.actor_warm = False
        self.safety_stats: dict[str, float] = {}
        kwargs.setdefault("replay_buffer_class", CostReplayBuffer)
        policy_kwargs = dict(kwargs.pop("policy_kwargs", None) or {})
        policy_kwargs["share_features_extractor"] = True
        super().__init__(*args, policy_kwargs=policy_kwargs, **kwargs)

    # ------------------------------------------------------------------ setup and saving
    def _setup_model(self) -> None:
        super()._setup_model()
        feat_dim = self.actor.features_dim
        act_dim = int(np.prod(self.action_space.shape))
        arch = tuple(self.policy_kwargs.get("net_arch", (64, 64)) or (64, 64))
        if isinstance(self.policy_kwargs.get("net_arch"), dict):
            arch = tuple(self.policy_kwargs["net_arch"].get("qf", (64, 64)))
        self.cost_critic = self.cost_critic_target = self.cost_optimizer = None
        if self.use_cost_critic:
            self.cost_critic = CostCritic(feat_dim, act_dim, arch).to(self.device)
            self.cost_critic_target = copy.deepcopy(self.cost_critic).requires_grad_(False)
            self.cost_optimizer = torch.optim.Adam(self.cost_critic.parameters(), lr=self.lr_schedule(1))
        self.lagrange_raw = self.lagrange_optimizer = None
        if self.lagrangian:
            raw = float(np.log(np.expm1(max(self.lagrange_init, 1e-6))))  # softplus^-1
            self.lagrange_raw = torch.tensor([raw], device=self.device, requires_grad=True)
            # no momentum: the multiplier must turn as soon as the cost crosses the limit
            self.lagrange_optimizer = torch.optim.Adam([self.lagrange_raw], lr=self.lagrange_lr, betas=(0.0, 0.999))

    def set_bc_anchor(self, frames: Any, starts: torch.Tensor, weight: float, seed: int = 0) -> None:
        """Keep cloning ``frames`` (``LoggedFrames``; batches drawn from ``starts``) during online updates,
        with weight ``weight`` relative to the critic's scale (``0`` removes the anchor)."""
        if weight < 0:
            raise ValueError(f"bc_weight must be >= 0, got {weight}.")
        self.bc_anchor = (frames, starts, float(weight)) if weight > 0 and len(starts) else None
        self._bc_gen = torch.Generator().manual_seed(seed)

    def _bc_anchor_loss(self, batch_size: int) -> torch.Tensor:
        from safeadapt_bench.baselines.common.pretrain import bc_losses

        frames, starts, _ = self.bc_anchor
        idx = starts[torch.randint(len(starts), (batch_size,), generator=self._bc_gen)]
        parts = bc_losses(self, frames.features(self.actor.features_extractor, idx), frames.labels[idx])
        return parts["bc_arm_mse"] + parts["bc_gripper_bce"]

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "veto_report", "cost_critic", "cost_critic_target",
                "cost_optimizer", "lagrange_raw", "lagrange_optimizer", "online_scores", "online_costs",
                "online_dones", "_last_score", "bc_anchor", "_bc_gen"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = super()._get_torch_save_params()
        if self.use_cost_critic:
            state_dicts = [*state_dicts, "cost_critic", "cost_critic_target", "cost_optimizer"]
        if self.lagrangian:
            state_dicts = [*state_dicts, "lagrange_optimizer"]
            tensors = [*tensors, "lagrange_raw"]
        return state_dicts, tensors

    # ------------------------------------------------------------------ pieces
    @property
    def lagrange_multiplier(self) -> float:
        """The current multiplier ``lambda`` (0 without the Lagrangian)."""
        return float(F.softplus(self.lagrange_raw).item()) if self.lagrange_raw is not None else 0.0

    def update_lagrange(self, cost_estimate: float) -> float:
        """One multiplier step on ``-lambda * (cost_estimate - cost_limit)``; returns the new ``lambda``."""
        if self.lagrange_raw is None:
            raise RuntimeError("update_lagrange needs lagrangian=True.")
        loss = -F.softplus(self.lagrange_raw) * (float(cost_estimate) - self.cost_limit)
        self.lagrange_optimizer.zero_grad()
        loss.sum().backward()
        self.lagrange_optimizer.step()
        return self.lagrange_multiplier

    def features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Actor (= critic) features of a batch of raw observation tensors."""
        return self.actor.extract_features(obs, self.actor.features_extractor)

    def actor_from_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled (squashed) actions and their log-probabilities ``(B, 1)`` from features."""
        latent = self.actor.latent_pi(features)
        mean = self.actor.mu(latent)
        log_std = torch.clamp(self.actor.log_std(latent), -20, 2)
        actions, log_prob = self.actor.action_dist.log_prob_from_params(mean, log_std)
        return actions, log_prob.reshape(-1, 1)

    def q_from_features(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Twin reward critics, minimum over the two, ``(B, 1)``."""
        x = torch.cat([features, actions], dim=1)
        return torch.min(torch.cat([q(x) for q in self.critic.q_networks], dim=1), dim=1, keepdim=True)[0]

    def cost_rate(self, obs: Any, actions: np.ndarray | torch.Tensor) -> np.ndarray:
        """Predicted cost rates of ``actions`` (``(N, act_dim)``, in the action space) at one observation."""
        obs_t, _ = self.policy.obs_to_tensor(obs)
        with torch.no_grad():
            feats = self.features(obs_t)
            acts = torch.as_tensor(self.policy.scale_action(np.asarray(actions, dtype=np.float32)),
                                   device=self.device)
            return self.cost_critic(feats.expand(len(acts), -1), acts).squeeze(1).cpu().numpy()

    # ------------------------------------------------------------------ the veto
    def shield(self, obs: Any, action: np.ndarray, deterministic: bool = False,
               features: torch.Tensor | None = None) -> tuple[np.ndarray, bool]:
        """Veto ``action`` (in the action space; one per observation) if its predicted cost rate is above
        the threshold: execute a candidate that passes (see ``veto_choice``), else the lowest-cost one.

        ``obs`` is one observation or a vectorised batch of one (unused when its ``features`` are
        given). With ``deterministic`` the candidates come from a fixed noise draw, so the same
        observation always gives the same action. Returns ``(executed_action, fired)``.
        """
        single = np.asarray(action, dtype=np.float32).reshape(-1, *self.action_space.shape)
        with torch.no_grad():
            if features is None:
                features = self.features(self.policy.obs_to_tensor(obs)[0])
            feats = features[:1]
            proposed = torch.as_tensor(self.policy.scale_action(single[:1]), device=self.device)
            latent = self.actor.latent_pi(feats)
            mean, log_std = self.actor.mu(latent), torch.clamp(self.actor.log_std(latent), -20, 2)
            gen = torch.Generator(device=self.device).manual_seed(0) if deterministic else None
            noise = torch.randn((self.veto_candidates, mean.shape[1]), generator=gen, device=self.device)
            sampled = torch.tanh(mean + log_std.exp() * noise)
            cands = torch.cat([proposed, sampled], dim=0)
            if self.veto_uniform_candidates:  # drawn only when asked for: the default draws as before
                uniform = torch.rand((self.veto_uniform_candidates, mean.shape[1]), generator=gen,
                                     device=self.device) * 2 - 1  # the (scaled) action box
                cands = torch.cat([cands, uniform], dim=0)
            f = feats.expand(len(cands), -1)
            cost = self.cost_critic(f, cands).squeeze(1)
            ok = cost <= self.veto_threshold
            fired = not bool(ok[0])
            if not fired:
                choice = 0
            elif ok.any():
                if self.veto_choice == "best_q":
                    score = self.q_from_features(f, cands).squeeze(1)
                else:
                    score = -(cands - proposed).pow(2).sum(1)
                choice = int(torch.where(ok, score, torch.full_like(score, -torch.inf)).argmax())
            else:
                choice = int(cost.argmin())
        if fired and not getattr(self, "veto_enforce", True):  # shadow mode: counted, not enforced
            self.veto_shadow_count += 1
            fired, choice = False, 0
        self._last_score = float(cost[choice])
        if fired:
            executed = self.policy.unscale_action(cands[choice : choice + 1].cpu().numpy())
        else:  # the proposed action itself, untouched
            executed = np.asarray(action, dtype=np.float32)
        self.veto_decisions += 1
        self.veto_count += int(fired)
        if self.veto_report is not None:
            self.veto_report(fired)
        return executed.reshape(np.shape(action)).astype(np.float32), fired

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1):
        if getattr(self, "actor_warm", False):
            learning_starts = 0  # a pre-trained actor acts from the first step instead of uniform noise
        veto, self.veto = self.veto, False  # SAC's _sample_action calls predict: shield once, here
        try:
            action, buffer_action = super()._sample_action(learning_starts, action_noise, n_envs)
        finally:
            self.veto = veto
        if self.veto and self.cost_critic is not None:
            executed, scores = [], []
            for i, a in enumerate(action):
                executed.append(self.shield({k: v[i : i + 1] for k, v in self._last_obs.items()}, a)[0])
                scores.append(self._last_score)
            action = np.stack(executed)
            buffer_action = self.policy.scale_action(action)
        elif self.cost_critic is not None:  # score what is executed, before the critic learns from it
            scores = [float(self.cost_rate({k: v[i : i + 1] for k, v in self._last_obs.items()}, a[None])[0])
                      for i, a in enumerate(action)]
        if self.cost_critic is not None:
            self.online_scores.extend(scores)
        return action, buffer_action

    def _store_transition(self, replay_buffer, buffer_action, new_obs, reward, dones, infos) -> None:  # noqa: ANN001
        if self.cost_critic is not None:
            self.online_costs.extend(float(info.get("cost", 0.0)) for info in infos)
            self.online_dones.extend(bool(d) for d in dones)
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False):
        """SAC's ``predict``, then the veto (when enabled) on a single observation.

        With the veto, the proposal and the veto share one backbone pass (as SB3's ``predict`` does:
        the squashed mean, or a sample, mapped back to the action space).
        """
        if not (self.veto and self.cost_critic is not None):
            return super().predict(observation, state, episode_start, deterministic)
        self.policy.set_training_mode(False)
        obs_t, vectorized = self.policy.obs_to_tensor(observation)
        with torch.no_grad():
            feats = self.features(obs_t)
            if deterministic:
                scaled = torch.tanh(self.actor.mu(self.actor.latent_pi(feats)))
            else:
                scaled, _ = self.actor_from_features(feats)
        proposed = self.policy.unscale_action(scaled.cpu().numpy().reshape(-1, *self.action_space.shape))
        action, _ = self.shield(None, proposed, deterministic=deterministic, features=feats)
        return (action if vectorized else action.squeeze(0)), state

    # ------------------------------------------------------------------ training
    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SAC's update with shared features, plus the cost critic and the multiplier when enabled."""
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        if self.actor_lr is not None:
            for group in self.actor.optimizer.param_groups:
                group["lr"] = self.actor_lr
        logs: dict[str, list[float]] = {}

        def log(name: str, value: float) -> None:
            logs.setdefault(name, []).append(float(value))

        for step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            feats = self.features(data.observations)  # adapters / backbone learn through the actor's own path
            with torch.no_grad():
                next_feats = self.features(data.next_observations)
            actions_pi, log_prob = self.actor_from_features(feats)
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = torch.exp(self.log_ent_coef.detach())
                ent_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                self.ent_coef_optimizer.zero_grad()
                ent_loss.backward()
                self.ent_coef_optimizer.step()
            else:
                ent_coef = self.ent_coef_tensor
            log("ent_coef", ent_coef.item())

            with torch.no_grad():
                next_actions, next_log_prob = self.actor_from_features(next_feats)
                target_q = torch.cat(self.critic_target(data.next_observations, next_actions), dim=1)
                target_q = torch.min(target_q, dim=1, keepdim=True)[0] - ent_coef * next_log_prob
                target_q = data.rewards + (1 - data.dones) * self.gamma * target_q
            x = torch.cat([feats.detach(), data.actions], dim=1)
            critic_loss = 0.5 * sum(F.mse_loss(q(x), target_q) for q in self.critic.q_networks)
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            log("critic_loss", critic_loss.item())

            if self.cost_critic is not None:
                with torch.no_grad():
                    next_c = self.cost_critic_target(next_feats, next_actions)
                    target_c = (1 - self.cost_gamma) * data.costs + self.cost_gamma * (1 - data.dones) * next_c
                cost_loss = F.binary_cross_entropy_with_logits(
                    self.cost_critic.logits(feats.detach(), data.actions), target_c)
                self.cost_optimizer.zero_grad()
                cost_loss.backward()
                self.cost_optimizer.step()
                log("cost_critic_loss", cost_loss.item())

            # SB3's semantics for a shared extractor: it learns from the policy's path only. Through the
            # critic's input, the actor loss would move the features themselves to where Q is high.
            q_pi = self.q_from_features(feats.detach(), actions_pi)
            actor_loss = (ent_coef * log_prob - q_pi).mean()
            if self.bc_anchor is not None:
                bc = self._bc_anchor_loss(batch_size)
                actor_loss = actor_loss + self.bc_anchor[2] * q_pi.abs().mean().detach().clamp_min(1.0) * bc
                log("bc_anchor", bc.item())
            if self.lagrangian:
                qc_pi = self.cost_critic(feats.detach(), actions_pi)
                actor_loss = actor_loss + self.lagrange_multiplier * qc_pi.mean()
                log("lagrange_multiplier", self.update_lagrange(float(qc_pi.mean().item())))
                log("cost_estimate", qc_pi.mean().item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            log("actor_loss", actor_loss.item())

            if step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
                if self.cost_critic is not None:
                    polyak_update(self.cost_critic.parameters(), self.cost_critic_target.parameters(), self.tau)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for name, values in logs.items():
            self.logger.record(f"train/{name}", float(np.mean(values)))
            self.safety_stats[name] = float(np.mean(values))
        if self.veto_decisions:
            self.safety_stats["veto_rate"] = self.veto_count / self.veto_decisions
