"""The cost critic's data, threshold and quality (issue 12): what makes the veto a Recovery-RL-style filter.

* **Labels.** A logged (or executed) action at step ``t`` is *unsafe* when a cost occurs in its window
  ``t .. t+W-1`` of the same episode (``W`` = ``AgentConfig.window``), the event the critic's
  discounted target ``sum_k g^k c_{t+k} / sum_k g^k`` is non-zero for.
* **Behaviour cloning** uses only safe windows (no cost in ``t .. t+W-1``) of ``expert`` and ``noisy``
  episodes (:func:`bc_starts`); the cost critic trains on every window, sampled class-balanced (half
  unsafe, half safe; :func:`balanced_starts`), since unsafe windows are a few percent of the logs.
* **Threshold.** With a target false-veto rate ``r`` (``0 < r < 1``), the threshold is the
  ``ceil((1 - r) n)``-th smallest critic score among the ``n`` *safe* logged actions
  (:func:`calibrate_threshold`): at most a fraction ``r`` of them score above it and would be vetoed.
  The scores are those of held-out episodes when they hold at least ``ceil(1 / r)`` safe actions
  (a split-conformal calibration), else of the training episodes.
* **Quality.** ROC AUC of the score against the label, and the precision / recall of the veto decision
  ``score > threshold`` (:func:`veto_quality`), on held-out logs and on the agent's own online
  transitions (each scored when it was executed, before the critic trained on it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from safeadapt_bench.baselines.common.frames import LoggedFrames

#: Behaviour policies whose safe windows are cloned.
BC_POLICIES: tuple[str, ...] = ("expert", "noisy")


def check_false_veto_rate(rate: Any) -> float:
    """``rate`` as a float if ``0 < rate < 1``; a ``ValueError`` saying what to pass otherwise."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 < float(rate) < 1.0:
        raise ValueError(f"false_veto_rate must be a fraction strictly between 0 and 1 (e.g. 0.05), got {rate!r}; "
                         "use None for the fixed veto_threshold.")
    return float(rate)


def window_labels(costs: torch.Tensor, episode: torch.Tensor, window: int) -> torch.Tensor:
    """``(N,)`` bool, on the CPU: a cost occurs at one of the steps ``t .. t+window-1`` of the same episode.

    On the CPU wherever ``costs`` lives (pre-training may hold them on the GPU): the labels select window
    starts, and the index tensors stay on the CPU.
    """
    costs, episode = torch.as_tensor(costs).detach().float().cpu(), torch.as_tensor(episode).cpu()
    out = costs > 0
    for k in range(1, max(int(window), 1)):
        nxt = torch.zeros_like(out)
        nxt[:-k] = (costs[k:] > 0) & (episode[k:] == episode[:-k])
        out |= nxt
    return out


def bc_starts(frames: LoggedFrames, starts: torch.Tensor, window: int) -> tuple[torch.Tensor, str]:
    """The window starts that behaviour cloning uses, and the rule that chose them.

    Safe windows of ``expert`` / ``noisy`` frames; logs without such frames (e.g. only ``careless``
    episodes) fall back to their safe windows, and logs without a safe window to every window.
    """
    unsafe = window_labels(frames.costs, frames.episode, window)[starts]
    if frames.source is not None and len(frames.sources):
        codes = [i for i, n in enumerate(frames.sources) if n in BC_POLICIES]
        ok = torch.isin(frames.source[starts], torch.tensor(codes, dtype=torch.long))
        if bool((ok & ~unsafe).any()):
            return starts[ok & ~unsafe], "safe windows of expert/noisy episodes"
    if bool((~unsafe).any()):
        return starts[~unsafe], "safe windows (the logs hold no expert/noisy episode)"
    return starts, "every window (the logs hold no safe window)"


def critic_pools(frames: LoggedFrames, starts: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(unsafe, safe)`` window starts among ``starts``, for class-balanced critic batches."""
    unsafe = window_labels(frames.costs, frames.episode, window)[starts]
    return starts[unsafe], starts[~unsafe]


def balanced_starts(pools: tuple[torch.Tensor, torch.Tensor], n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` window starts, half unsafe and half safe (plain draws from the non-empty pool when one is empty)."""
    pos, neg = pools
    if not len(pos) or not len(neg):
        both = pos if len(pos) else neg
        return both[torch.randint(len(both), (n,), generator=gen)]
    k = n // 2
    return torch.cat([pos[torch.randint(len(pos), (k,), generator=gen)],
                      neg[torch.randint(len(neg), (n - k,), generator=gen)]])


def critic_scores(model: Any, frames: LoggedFrames, batch_size: int = 512) -> np.ndarray:
    """``Q_c(s_t, a_t)`` of every logged frame with its executed action, ``(N,)``."""
    ext = model.actor.features_extractor
    out = []
    model.policy.set_training_mode(False)
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            idx = torch.arange(i, min(i + batch_size, len(frames)))
            feats = frames.features(ext, idx)
            out.append(model.cost_critic(feats, frames.actions[idx]).squeeze(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def calibrate_threshold(safe_scores: np.ndarray, false_veto_rate: float) -> float:
    """The ``ceil((1 - r) n)``-th smallest of ``n`` safe scores: at most ``r n`` of them lie above it."""
    rate = check_false_veto_rate(false_veto_rate)
    s = np.sort(np.asarray(safe_scores, dtype=np.float64))
    if not len(s):
        raise ValueError("No safe logged action to calibrate the veto threshold on.")
    k = min(max(math.ceil((1.0 - rate) * len(s) - 1e-9), 1), len(s))
    return float(s[k - 1])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half; the Mann-Whitney form); ``None`` with one class only."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def veto_quality(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """AUC, and precision / recall / false-veto rate of ``score > threshold`` against ``labels``."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    veto = scores > threshold
    tp, fp = int((veto & labels).sum()), int((veto & ~labels).sum())
    pos, neg = int(labels.sum()), int((~labels).sum())
    return {"auc": roc_auc(scores, labels), "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / pos if pos else None, "false_veto_rate": fp / neg if neg else None,
            "veto_rate": float(veto.mean()) if len(veto) else None, "positives": pos, "negatives": neg,
            "threshold": float(threshold)}


def calibrate_and_measure(model: Any, frames: LoggedFrames, val: LoggedFrames | None, window: int,
                          false_veto_rate: float | None) -> dict[str, Any]:
    """Set ``model.veto_threshold`` by the calibration rule (when ``false_veto_rate`` is given) and measure
    the critic on the held-out (``logs_heldout``) and training (``logs_train``) episodes."""
    train_s = critic_scores(model, frames)
    train_y = window_labels(frames.costs, frames.episode, window).numpy()
    val_s = critic_scores(model, val) if val is not None and len(val) else None
    val_y = window_labels(val.costs, val.episode, window).numpy() if val_s is not None else None
    out: dict[str, Any] = {"window": int(window), "false_veto_rate_target": false_veto_rate}
    if false_veto_rate is not None:
        rate = check_false_veto_rate(false_veto_rate)
        need = math.ceil(1.0 / rate)
        heldout = val_s is not None and int((~val_y).sum()) >= need
        safe = val_s[~val_y] if heldout else train_s[~train_y]
        model.veto_threshold = calibrate_threshold(safe, rate)
        out.update(threshold_rule=f"quantile {1 - rate:g} of the critic's score on {len(safe)} safe "
                                  f"{'held-out' if heldout else 'training'} logged actions")
    else:
        out.update(threshold_rule="fixed veto_threshold")
    out["threshold"] = float(model.veto_threshold)
    out["logs_train"] = veto_quality(train_s, train_y, model.veto_threshold)
    out["logs_heldout"] = veto_quality(val_s, val_y, model.veto_threshold) if val_s is not None else None
    return out


def online_quality(model: Any, window: int) -> dict[str, Any] | None:
    """:func:`veto_quality` of the scores the model gave its executed actions while learning
    (``model.online_scores``) against their window labels; ``None`` when it scored none."""
    scores = np.asarray(getattr(model, "online_scores", []), dtype=np.float64)
    costs = np.asarray(getattr(model, "online_costs", []), dtype=np.float64)
    n = min(len(scores), len(costs))
    if not n:
        return None
    dones = np.asarray(model.online_dones[:n], dtype=bool)
    episode = np.concatenate([[0], np.cumsum(dones[:-1])])
    labels = window_labels(torch.from_numpy(costs[:n]), torch.from_numpy(episode), window).numpy()
    out = veto_quality(scores[:n], labels, model.veto_threshold)
    out["transitions"] = n
    return out
