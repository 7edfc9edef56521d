"""Shared offline pre-training on the logs: behaviour cloning, InfoNCE alignment, cost- and reward-critic fits.

The frames come from :func:`~safeadapt_bench.baselines.common.frames.logged_frames`: the frozen part of
the image path is computed once per logged frame (and cached on disk), so an update costs only what
trains. The last ``val_fraction`` of the episodes is held out: the behaviour-cloning loss on them is
reported (``val_bc``, and its curve).

Every update draws one batch of frames ``t`` (with the ``W``-step window that follows) and applies
the enabled losses:

* **Behaviour cloning** of the actor (and through it the pooling heads and adapters): the squared
  error of the squashed mean action on the arm dimensions, and, as the gripper acts only on the sign
  of its command, a logistic loss on that sign (``P(close) = sigmoid(2 mu)``, which is what SAC's
  ``tanh`` squashing means for it), plus a small Gaussian log-likelihood term that sets the
  actor's exploration scale.
* **InfoNCE**: the adapter's pooled image embedding of the observation at ``t`` (the first camera's,
  whether or not the policy's features hold it; through a projection head) against an MLP
  embedding of the window ``(proprio[t:t+W], action[t:t+W])``; the other pairs in the batch are
  negatives (symmetric cross-entropy).
* **Cost critic**: binary cross-entropy of ``Q_c(s_t, a_t)`` against the window's normalised
  discounted cost ``sum_k g^k c_{t+k} / sum_k g^k`` (the logs hold no next images, so the target
  is a truncated Monte-Carlo one rather than TD), on its own class-balanced batch (half windows with a
  cost, half without; ``baselines.common.critic``).
* **Reward critics** (``AgentConfig.critic_pretrain``, off by default): each of SAC's Q networks
  regresses the discounted return of the logged episode from ``(s_t, a_t)`` (Monte Carlo, SAC's
  ``gamma``), on the behaviour-cloning batch's features, so that adaptation starts from critics that
  value the logged behaviour instead of random ones.

Behaviour cloning (and InfoNCE with it) draws only safe windows of ``expert`` / ``noisy`` episodes
(:func:`~safeadapt_bench.baselines.common.critic.bc_starts`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from safeadapt_bench.agents.budget import Budget
from safeadapt_bench.baselines.common.critic import balanced_starts, bc_starts, critic_pools
from safeadapt_bench.baselines.common.frames import LoggedFrames, discounted_returns
from safeadapt_bench.baselines.common.sac import SafeSAC


class WindowEncoder(nn.Module):
    """MLP embedding of a flattened (proprio, action) window."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between row-aligned embeddings (row ``i`` of ``a`` and ``b`` are positives)."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    labels = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def discounted_rate(costs: torch.Tensor, gamma: float) -> torch.Tensor:
    """``sum_k g^k c_k / sum_k g^k`` over the last axis of ``(B, W)`` costs, as ``(B, 1)``."""
    w = gamma ** torch.arange(costs.shape[1], dtype=costs.dtype, device=costs.device)
    return (costs * w).sum(1, keepdim=True) / w.sum()


def bc_losses(model: SafeSAC, feats: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
    """Behaviour-cloning terms of the actor at ``feats`` for the logged ``action`` (in [-1, 1])."""
    latent = model.actor.latent_pi(feats)
    mean, log_std = model.actor.mu(latent), torch.clamp(model.actor.log_std(latent), -20, 2)
    target = action.clamp(-0.99, 0.99)
    dist = model.actor.action_dist.proba_distribution(mean, log_std)
    return {
        "bc_arm_mse": F.mse_loss(torch.tanh(mean[:, :-1]), target[:, :-1]),
        "bc_gripper_bce": F.binary_cross_entropy_with_logits(2 * mean[:, -1], (action[:, -1] > 0).float()),
        "bc_nll": -dist.log_prob(target).mean() / target.shape[1],
    }


@dataclass
class PretrainSettings:
    """What :func:`pretrain` runs (the agent's :class:`AgentConfig` fields of the same meaning)."""

    contrastive: bool
    behaviour_cloning: bool
    cost_critic: bool
    window: int = 4
    updates: int = 3000
    seconds: float = 600.0
    batch_size: int = 256
    lr: float = 1e-3
    temperature: float = 0.1
    val_every: int = 250
    seed: int = 0
    reward_critic: bool = False


class _Losses(nn.Module):
    """The extra heads of pre-training (InfoNCE projections), so one optimiser holds everything."""

    def __init__(self, embed_dim: int, window_dim: int) -> None:
        super().__init__()
        self.image, self.window = nn.Linear(embed_dim, 64), WindowEncoder(window_dim, 64)


def _batch_losses(model: SafeSAC, frames: LoggedFrames, idx: torch.Tensor, s: PretrainSettings,
                  heads: _Losses | None, returns: torch.Tensor | None = None,
                  variant: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    ext = model.actor.features_extractor
    # img: the first camera's pooled image embedding, which InfoNCE aligns (in the features or not)
    feats, img = frames.features(ext, idx, with_embedding=True, variant=variant)
    action = frames.actions[idx]
    parts: dict[str, torch.Tensor] = {}
    if s.behaviour_cloning:
        parts.update(bc_losses(model, feats, frames.labels[idx]))
    if heads is not None:
        win = torch.cat([frames.windows(idx, s.window, frames.obs["proprio"]),
                         frames.windows(idx, s.window, frames.actions)], dim=-1)
        parts["infonce"] = info_nce(heads.image(img), heads.window(win), s.temperature)
    if s.cost_critic and model.cost_critic is not None:
        target_c = discounted_rate(frames.windows(idx, s.window, frames.costs), model.cost_gamma)
        parts["cost_bce"] = F.binary_cross_entropy_with_logits(model.cost_critic.logits(feats.detach(), action),
                                                               target_c)
    if returns is not None:  # the reward critics on the same frames' features (not trained by them)
        parts["q_mc"] = _q_mc(model, feats.detach(), action, returns[idx])
    return parts


def critic_bce(model: SafeSAC, frames: LoggedFrames, idx: torch.Tensor, window: int) -> torch.Tensor:
    """The offline cost-critic loss on the windows starting at ``idx`` (features are not trained by it)."""
    ext = model.actor.features_extractor
    with torch.no_grad():
        feats = frames.features(ext, idx)
    target = discounted_rate(frames.windows(idx, window, frames.costs), model.cost_gamma)
    return F.binary_cross_entropy_with_logits(model.cost_critic.logits(feats, frames.actions[idx]), target)


def critic_mc(model: SafeSAC, frames: LoggedFrames, idx: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """The offline reward-critic loss: each of SAC's Q networks regresses the logged discounted return of the
    executed action at ``idx`` (features are not trained by it)."""
    with torch.no_grad():
        feats = frames.features(model.actor.features_extractor, idx)
    return _q_mc(model, feats, frames.actions[idx], returns[idx])


def _q_mc(model: SafeSAC, feats: torch.Tensor, action: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    x = torch.cat([feats, action], dim=1)
    target = returns.to(x.device)[:, None]
    return 0.5 * sum(F.mse_loss(q(x), target) for q in model.critic.q_networks)


def _total(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum((0.1 * v if k == "bc_nll" else v) for k, v in parts.items())


def validation_bc(model: SafeSAC, frames: LoggedFrames, batch_size: int = 512) -> float | None:
    """Mean behaviour-cloning loss (arm MSE + gripper BCE) over every frame of ``frames``."""
    if frames is None or not len(frames):
        return None
    ext = model.actor.features_extractor
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            idx = torch.arange(i, min(i + batch_size, len(frames)))
            feats = frames.features(ext, idx)
            parts = bc_losses(model, feats, frames.labels[idx])
            total += float(parts["bc_arm_mse"] + parts["bc_gripper_bce"]) * len(idx)
            n += len(idx)
    return total / n


def pretrain(model: SafeSAC, frames: LoggedFrames, val: LoggedFrames | None, budget: Budget,
             settings: PretrainSettings) -> dict[str, Any]:
    """Run the enabled offline losses on ``frames`` for at most ``settings.updates`` updates and
    ``settings.seconds`` (and within ``budget``). Returns mean losses, the validation curve and counts."""
    s = settings
    cost_critic = s.cost_critic and model.cost_critic is not None
    ext = model.actor.features_extractor
    contrastive = s.contrastive and any(p.requires_grad for p in ext.backbone.clip.visual.parameters())
    if not (contrastive or s.behaviour_cloning or cost_critic or s.reward_critic):
        return {"updates": 0, "skipped": "nothing to pre-train"}
    starts = frames.window_starts(s.window)
    if not len(starts):
        raise ValueError(f"No logged episode has {s.window} steps; use a shorter window.")
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    heads = None
    if contrastive:
        heads = _Losses(ext.backbone.embed_dim, s.window * (frames.obs["proprio"].shape[-1] + frames.actions.shape[-1]))
        heads = heads.to(model.device)
    params = [p for p in model.actor.parameters() if p.requires_grad] if (contrastive or s.behaviour_cloning) else []
    params += list(heads.parameters()) if heads is not None else []
    params += list(model.cost_critic.parameters()) if cost_critic else []
    returns = discounted_returns(frames, model.gamma) if s.reward_critic else None
    params += [p for q in model.critic.q_networks for p in q.parameters()] if s.reward_critic else []
    opt = torch.optim.Adam(params, lr=s.lr)
    cap = min(s.updates, budget.updates) if budget.updates is not None else s.updates
    wall = min(s.seconds, budget.wall_seconds) if budget.wall_seconds is not None else s.seconds
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cap, 1))
    model.policy.set_training_mode(True)
    sums: dict[str, float] = {}
    curve: dict[str, list[float]] = {"updates": [], "val_bc": []}
    t0, n = time.perf_counter(), 0
    pool, bc_rule = bc_starts(frames, starts, s.window) if s.behaviour_cloning else (starts, "")
    pools = critic_pools(frames, starts, s.window) if cost_critic else None
    while n < cap and time.perf_counter() - t0 < wall:
        idx = pool[torch.randint(len(pool), (min(s.batch_size, len(pool)),), generator=gen)]
        actor = heads is not None or s.behaviour_cloning or returns is not None
        variant = frames.draw_variants(len(idx), gen)  # colour copies (None without: the draws stay as before)
        parts = _batch_losses(model, frames, idx, replace(s, cost_critic=False), heads, returns,
                              variant) if actor else {}
        if cost_critic:
            cidx = balanced_starts(pools, min(s.batch_size, len(starts)), gen)
            parts["cost_bce"] = critic_bce(model, frames, cidx, s.window)
        opt.zero_grad()
        _total(parts).backward()
        opt.step()
        sched.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v.item())
        n += 1
        if val is not None and s.behaviour_cloning and (n % s.val_every == 0 or n == cap):
            model.policy.set_training_mode(False)
            curve["updates"].append(n)
            curve["val_bc"].append(validation_bc(model, val))
            model.policy.set_training_mode(True)
    model.policy.set_training_mode(False)
    if val is not None and s.behaviour_cloning and n and (not curve["updates"] or curve["updates"][-1] != n):
        curve["updates"].append(n)  # stopped by the clock between validations: validate where it stopped
        curve["val_bc"].append(validation_bc(model, val))
    model.actor_warm = model.actor_warm or (s.behaviour_cloning and n > 0)
    # the target networks start from the pre-trained weights
    model.critic_target.load_state_dict(model.critic.state_dict())
    if model.cost_critic is not None:
        model.cost_critic_target.load_state_dict(model.cost_critic.state_dict())
    out: dict[str, Any] = {k: v / max(n, 1) for k, v in sums.items()}
    out.update(updates=n, frames=len(frames), val_frames=len(val) if val is not None else 0,
               seconds=round(time.perf_counter() - t0, 2))
    if curve["updates"]:
        out.update(val_bc=curve["val_bc"][-1], val_curve=curve)
    if s.behaviour_cloning:
        out.update(bc_frames=len(pool), bc_rule=bc_rule)
    if returns is not None:
        out.update(logged_return_mean=float(returns.mean()))
    if cost_critic:
        out.update(logged_cost_rate=float(frames.costs.mean()), critic_unsafe_windows=len(pools[0]),
                   critic_safe_windows=len(pools[1]))
    return out
