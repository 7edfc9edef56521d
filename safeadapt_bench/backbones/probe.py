"""Zero-shot image->caption retrieval on held-out scenes: the backbone's knowledge, and its forgetting.

For each probe scene, the image embedding is compared (cosine) with one fixed caption per category
(``probe_caption``); top-1 is correct when the scene's own category's caption scores highest (10-way,
chance 0.1). ``top1_position`` does the same over the 30 (category, position) captions (chance 1/30).
On scenes with distractors, ``top1_grounding`` asks where the *named* object is: among the scene
category's three position captions, the true position must score highest (chance 1/3), so the image
must be read for that object among the others. :func:`grounding_probe` reports it as ``top1``
(``settings.probe = "safeadapt_bench.backbones.probe:grounding_probe"`` makes forgetting cover grounding).
The probe runs whatever adapter is active on the backbone, so it measures an adapted backbone too.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from safeadapt_bench.backbones.captions import POSITIONS, probe_caption
from safeadapt_bench.backbones.scenes import CATEGORY_ORDER, SceneSet, probe_scenes
from safeadapt_bench.envs.categories import SPLITS


@torch.no_grad()
def probe_accuracy(
    backbone: nn.Module, scenes: SceneSet | None = None, *, use_depth: bool = True, batch_size: int = 250
) -> dict[str, float]:
    """Zero-shot retrieval accuracy of ``backbone`` (possibly adapted) on ``scenes``.

    Args:
        backbone: a :class:`~safeadapt_bench.backbones.Backbone`, with or without adapters.
        scenes: the scenes to probe; default: the fixed probe set (500 scenes, rendered once).
        use_depth: feed depth as well as RGB.

    Returns:
        ``top1`` (category, 10-way), ``top1_train`` / ``top1_heldout`` (scenes of each split's
        categories), ``top1_position`` (category and position, 30-way), ``chance`` and ``n``.
    """
    scenes = scenes if scenes is not None else probe_scenes()
    was_training = backbone.training
    backbone.eval()
    try:
        device = next(backbone.parameters()).device
        cats = list(CATEGORY_ORDER)
        text_cat = backbone.encode_text([probe_caption(c) for c in cats]).float()
        pairs = [(c, p) for c in cats for p in POSITIONS]
        text_pos = backbone.encode_text([probe_caption(c, p) for c, p in pairs]).float()
        img = []
        for i in range(0, len(scenes), batch_size):
            rgb = torch.as_tensor(scenes.rgb[i : i + batch_size], device=device)
            depth = torch.as_tensor(scenes.depth[i : i + batch_size], device=device) if use_depth else None
            img.append(backbone.encode_image(rgb, depth).float())
        emb = torch.cat(img)
    finally:
        backbone.train(was_training)
    pred_cat = (emb @ text_cat.T).argmax(1).cpu().numpy()
    pred_pair = (emb @ text_pos.T).argmax(1).cpu().numpy()
    truth = np.array([cats.index(c) for c in scenes.categories])
    truth_pair = np.array([pairs.index((c, p)) for c, p in zip(scenes.categories, scenes.position_words)])
    ok = pred_cat == truth
    train = np.isin(np.array(scenes.categories), SPLITS["Lift"]["train"])
    extra = {}
    if scenes.distractor_categories is not None:
        own = np.array([[pairs.index((c, p)) for p in POSITIONS] for c in scenes.categories])
        scores = np.take_along_axis((emb @ text_pos.T).cpu().numpy(), own, 1)
        truth_pos = np.array([POSITIONS.index(w) for w in scenes.position_words])
        extra["top1_grounding"] = float((scores.argmax(1) == truth_pos).mean())
    return {
        **extra,
        "top1": float(ok.mean()),
        "top1_train": float(ok[train].mean()) if train.any() else float("nan"),
        "top1_heldout": float(ok[~train].mean()) if (~train).any() else float("nan"),
        "top1_position": float((pred_pair == truth_pair).mean()),
        "chance": 1.0 / len(cats),
        "n": float(len(scenes)),
    }


def grounding_probe(backbone: nn.Module) -> dict[str, float]:
    """:func:`probe_accuracy` on the probe scenes with three distractors each; ``top1`` is
    ``top1_grounding`` (``top1_category`` keeps the category retrieval)."""
    res = probe_accuracy(backbone, probe_scenes(distractors=3))
    return {**res, "top1_category": res["top1"], "top1": res["top1_grounding"]}
