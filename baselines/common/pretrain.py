"""Shared offline pre-training on the logs: InfoNCE alignment, behaviour cloning, cost-critic fit.

Every update draws one batch of (observation, state-action window) pairs from
``OfflineDataset.contrastive_pairs`` and applies the enabled losses to it:

* **InfoNCE**: the adapter's image embedding of the observation at ``t`` (through a projection head)
  against an MLP embedding of the window ``(proprio[t:t+W], action[t:t+W])``; the pair from the same
  timestep is the positive, the other pairs in the batch are negatives (symmetric cross-entropy).
* **Behaviour cloning**: negative log-likelihood of the logged action ``a_t`` under the actor, plus
  the squared error of its mean action (trains the actor head and, through it, the adapters).
* **Cost critic**: binary cross-entropy of ``Q_c(s_t, a_t)`` against the window's normalised
  discounted cost ``sum_k g^k c_{t+k} / sum_k g^k`` (the logs hold no next images, so the target
  is a truncated Monte-Carlo one rather than TD).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from safeadapt_bench.agents.budget import Budget
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


def _pairs_forever(dataset: Any, batch_size: int, window: int, seed: int) -> Iterator[Any]:
    for epoch in itertools.count():
        yield from dataset.contrastive_pairs(batch_size, window, seed=seed + epoch, drop_last=False)


def pretrain(
    model: SafeSAC,
    dataset: Any,
    obs_of: Callable[[Any], dict[str, torch.Tensor]],
    budget: Budget,
    *,
    contrastive: bool,
    behaviour_cloning: bool,
    cost_critic: bool,
    window: int = 4,
    updates: int = 60,
    seconds: float = 40.0,
    batch_size: int = 32,
    lr: float = 1e-3,
    temperature: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the enabled offline losses on ``dataset`` (an ``OfflineDataset``) for at most ``updates``
    updates and ``seconds`` (and within ``budget``). ``obs_of(batch)`` turns a pair batch into the
    policy's observation tensors. Returns mean losses and counts."""
    cost_critic = cost_critic and model.cost_critic is not None
    extractor = model.actor.features_extractor
    backbone = extractor.backbone
    contrastive = contrastive and any(p.requires_grad for p in backbone.clip.visual.parameters())
    if not (contrastive or behaviour_cloning or cost_critic):
        return {"updates": 0, "skipped": "nothing to pre-train"}
    torch.manual_seed(seed)
    params: list[torch.nn.Parameter] = []
    head = enc = None
    it = _pairs_forever(dataset, batch_size, window, seed)
    first = next(it)
    if contrastive:
        dim = backbone.embed_dim
        wdim = window * (first.window_proprio.shape[-1] + first.window_action.shape[-1])
        head, enc = nn.Linear(dim, 64), WindowEncoder(wdim, 64)
        params += [*head.parameters(), *enc.parameters()]
    if contrastive or behaviour_cloning:
        params += [p for p in model.actor.parameters() if p.requires_grad]
    if cost_critic:
        params += list(model.cost_critic.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    cap = min(updates, budget.updates) if budget.updates is not None else updates
    wall = min(seconds, budget.wall_seconds) if budget.wall_seconds is not None else seconds
    model.policy.set_training_mode(True)
    sums: dict[str, float] = {}
    t0, n = time.perf_counter(), 0
    for batch in itertools.chain([first], it):
        if n >= cap or time.perf_counter() - t0 >= wall:
            break
        obs = obs_of(batch)
        loss = torch.zeros(())
        parts: dict[str, torch.Tensor] = {}
        feats = model.features(obs)
        if contrastive:
            img = feats[:, : backbone.embed_dim]  # the extractor's first entries: the image embedding
            win = torch.cat([batch.window_proprio, batch.window_action], dim=-1)
            parts["infonce"] = info_nce(head(img), enc(win), temperature)
        action = batch.window_action[:, 0]
        if behaviour_cloning:
            latent = model.actor.latent_pi(feats)
            mean, log_std = model.actor.mu(latent), torch.clamp(model.actor.log_std(latent), -20, 2)
            dist = model.actor.action_dist.proba_distribution(mean, log_std)
            target = torch.as_tensor(model.policy.scale_action(action.numpy())).clamp(-0.99, 0.99)
            nll = -dist.log_prob(target).mean() / target.shape[1]
            parts["bc_nll"] = nll
            parts["bc_mse"] = F.mse_loss(torch.tanh(mean), target)
        if cost_critic:
            target_c = discounted_rate(batch.window_cost.float(), model.cost_gamma)
            scaled = torch.as_tensor(model.policy.scale_action(action.numpy()))
            parts["cost_bce"] = F.binary_cross_entropy_with_logits(
                model.cost_critic.logits(feats.detach(), scaled), target_c)
        for name, value in parts.items():
            loss = loss + (0.1 * value if name == "bc_nll" else value)
            sums[name] = sums.get(name, 0.0) + float(value.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += 1
    model.policy.set_training_mode(False)
    model.actor_warm = model.actor_warm or (behaviour_cloning and n > 0)
    # the target networks start from the pre-trained weights
    model.critic_target.load_state_dict(model.critic.state_dict())
    if model.cost_critic is not None:
        model.cost_critic_target.load_state_dict(model.cost_critic.state_dict())
    out: dict[str, Any] = {k: v / max(n, 1) for k, v in sums.items()}
    out.update(updates=n, seconds=round(time.perf_counter() - t0, 2))
    if cost_critic:
        out["logged_cost_rate"] = float(np.mean(first.window_cost.numpy()))
    return out
