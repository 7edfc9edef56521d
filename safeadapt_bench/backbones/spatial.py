"""The backbone's spatial objective: patch tokens that say where the object is, in both cameras.

Image-text pretraining (:mod:`~safeadapt_bench.backbones.pretrain`) teaches the tower *what* is in a
front view; nothing asks its patch tokens *where*. :func:`spatial_finetune` continues from a
pretrained backbone on :class:`~safeadapt_bench.backbones.views.ViewSet` frames (front and wrist
views along scripted grasps, all ten categories) with three losses:

* **object keypoint** (per camera): a linear map of each patch token (after ``ln_post``, the tokens
  a policy's pooling head reads) gives a logit; the softmax over the grid is fitted by
  cross-entropy to a Gaussian (``sigma`` in patches) around the object's projected centre. It is
  the map a :class:`~safeadapt_bench.pooling.SpatialSoftmax` keypoint computes, so a policy's head
  can find any object, not only the categories of its logs;
* **patch depth**: a linear map of each token regresses the patch's mean normalised depth, so what
  the depth channel says (how near things are) stays in the tokens;
* **captions**: the image-text loss of pretraining on the front views (category and position
  captions), so the pooled embedding and the probe keep what they knew.

The heads are discarded afterwards: the shipped backbone is the tower alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from safeadapt_bench.backbones.captions import position_word, sample_caption
from safeadapt_bench.backbones.default import SpatialConfig
from safeadapt_bench.backbones.loader import Backbone
from safeadapt_bench.backbones.object_head import ObjectHead
from safeadapt_bench.backbones.pretrain import _match_matrix, contrastive_loss
from safeadapt_bench.backbones.views import VIEW_CAMERAS, ViewSet

__all__ = ["SpatialConfig", "fit_object_head", "keypoint_target", "patch_depth", "spatial_finetune"]


def keypoint_target(points: torch.Tensor, grid: int, sigma: float) -> torch.Tensor:
    """``(B, 2)`` points in ``[-1, 1]`` patch-centre coordinates -> ``(B, grid**2)`` Gaussian weights
    over the patch centres (row-major), summing to 1; ``sigma`` in patches."""
    lin = torch.linspace(-1, 1, grid)
    ys, xs = torch.meshgrid(lin, lin, indexing="ij")
    centres = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)  # (N, 2) as SpatialSoftmax's coords
    d2 = ((points[:, None, :] - centres[None]) ** 2).sum(-1) * ((grid - 1) / 2) ** 2  # in patches^2
    w = torch.exp(-d2 / (2 * sigma**2))
    return w / w.sum(1, keepdim=True).clamp_min(1e-12)


def patch_depth(backbone: Backbone, depth: torch.Tensor) -> torch.Tensor:
    """``(B, 1, S, S)`` metres -> ``(B, grid**2)`` mean of the backbone's depth channel per patch."""
    return F.adaptive_avg_pool2d(backbone.normalize_depth(depth), backbone.grid_size).flatten(1)


def _shift(images: torch.Tensor, points: torch.Tensor, shift: int, grid: int, gen: torch.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Translate ``(B, C, S, S)`` by up to ``shift`` px (edge padding) and move ``points`` with them."""
    if shift <= 0:
        return images, points
    b, _, s, _ = images.shape
    padded = F.pad(images, (shift,) * 4, mode="replicate")
    off = torch.randint(0, 2 * shift + 1, (b, 2), generator=gen)  # (row, col) of the crop
    out = torch.stack([padded[i, :, off[i, 0]: off[i, 0] + s, off[i, 1]: off[i, 1] + s] for i in range(b)])
    per_px = 2 / (grid - 1) * grid / s  # coordinate units per pixel
    moved = points - (off.flip(1).float() - shift) * per_px  # content moves by (shift - off)
    return out, moved


def _view_losses(bb: Backbone, heads: ObjectHead, cam: int, rgb: torch.Tensor, depth: torch.Tensor,
                 points: torch.Tensor, visible: torch.Tensor, c: SpatialConfig, gen: torch.Generator
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    grid = bb.grid_size
    x, points = _shift(torch.cat([rgb, depth], 1), points, c.shift, grid, gen)
    rgb, depth = x[:, :3], x[:, 3:]
    pooled, patches = bb.vision_head(bb.vision_blocks(bb.vision_embed(rgb / 255.0, depth)))
    logits = heads.keypoint[cam](patches).squeeze(-1)  # camera ``cam`` of VIEW_CAMERAS
    target = keypoint_target(points, grid, c.sigma)
    inside = visible & (points.abs() <= 1 + 1 / (grid - 1)).all(1)
    ce = -(target * logits.log_softmax(1)).sum(1)
    parts = {"keypoint": (ce * inside).sum() / inside.sum().clamp_min(1),
             "depth": F.mse_loss(heads.depth(patches).squeeze(-1), patch_depth(bb, depth))}
    return parts, pooled


def spatial_finetune(backbone: Backbone, views: ViewSet, config: SpatialConfig, *, progress: bool = True,
                     log: Callable[[str], None] = print) -> dict:
    """Fine-tune ``backbone`` (in place, vision and text towers) on ``views``; returns a record with the
    final losses and the keypoint error of the heads on the last batches."""
    from tqdm.auto import tqdm

    c = config
    if views.grid != backbone.grid_size:
        raise ValueError(f"The views' points refer to a {views.grid}x{views.grid} grid; the backbone's is "
                         f"{backbone.grid_size}x{backbone.grid_size}. Render them with grid={backbone.grid_size}.")
    torch.manual_seed(c.seed)
    gen = torch.Generator().manual_seed(c.seed)
    rng = np.random.default_rng(c.seed)
    backbone.freeze(False).train()
    heads = ObjectHead(backbone.vision_width, backbone.grid_size, VIEW_CAMERAS[:views.rgb.shape[1]])
    params = list(backbone.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=c.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / c.warmup) * 0.5 * (
        1 + math.cos(math.pi * min(s, c.steps) / c.steps)))
    rgb_all = torch.as_tensor(views.rgb).permute(0, 1, 4, 2, 3)
    depth_all = torch.as_tensor(views.depth).permute(0, 1, 4, 2, 3)
    points_all, visible_all = torch.as_tensor(views.points), torch.as_tensor(views.visible)
    words = [position_word(float(y)) for y in views.positions[:, 1]]
    tok_cache: dict[str, torch.Tensor] = {}
    history: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for _ in tqdm(range(c.steps), desc="spatial objective", disable=not progress):
        idx = torch.as_tensor(rng.choice(len(views), c.batch_size, replace=False))
        parts: dict[str, torch.Tensor] = {}
        pooled_front = None
        for cam in range(rgb_all.shape[1]):
            p, pooled = _view_losses(backbone, heads, cam, rgb_all[idx, cam].float(), depth_all[idx, cam],
                                     points_all[idx, cam], visible_all[idx, cam], c, gen)
            for k, v in p.items():
                parts[k] = parts.get(k, 0) + v / rgb_all.shape[1]
            pooled_front = pooled if cam == 0 else pooled_front
        caps = [sample_caption(views.categories[i], words[i], rng, 1 / 3) for i in idx.tolist()]
        for text, _ in caps:
            tok_cache.setdefault(text, backbone.tokenize(text)[0])
        txt = backbone.encode_text(torch.stack([tok_cache[t] for t, _ in caps]))
        match = _match_matrix([views.categories[i] for i in idx.tolist()], [words[i] for i in idx.tolist()],
                              [views.categories[i] for i in idx.tolist()], [q for _, q in caps])
        parts["caption"] = contrastive_loss(pooled_front, txt, backbone.clip.logit_scale.exp().clamp(max=100), match)
        loss = (c.keypoint_weight * parts["keypoint"] + c.depth_weight * parts["depth"]
                + c.caption_weight * parts["caption"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        for k, v in parts.items():
            history.setdefault(k, []).append(float(v.detach()))
    backbone.object_head = heads  # shipped with the tower (frozen with it)
    backbone.eval()
    record = {"config": asdict(c), "frames": len(views), "train_seconds": round(time.perf_counter() - t0, 1),
              **{f"initial_{k}": float(np.mean(v[:10])) for k, v in history.items()},
              **{f"final_{k}": float(np.mean(v[-50:])) for k, v in history.items()}}
    log(f"spatial objective: {c.steps} steps in {record['train_seconds']} s; " + ", ".join(
        f"{k} {record['final_' + k]:.3f}" for k in history))
    return record


def fit_object_head(backbone: Backbone, views: ViewSet, *, steps: int = 400, lr: float = 1e-2, sigma: float = 0.6,
                    seed: int = 0) -> dict:
    """Fit a new :class:`ObjectHead` on a frozen ``backbone``'s patch tokens of ``views`` (the tokens are
    computed once) and attach it; returns the keypoint error per camera on the views of the train and
    the held-out categories, in patches (the distance from the object to the softmax's expected point)."""
    from safeadapt_bench.envs.categories import SPLITS

    torch.manual_seed(seed)
    grid, cams = backbone.grid_size, VIEW_CAMERAS[:views.rgb.shape[1]]
    patches, depth_t = [], []
    with torch.no_grad():
        for cam in range(len(cams)):
            rgb = torch.as_tensor(views.rgb[:, cam]).permute(0, 3, 1, 2).float() / 255.0
            depth = torch.as_tensor(views.depth[:, cam]).permute(0, 3, 1, 2)
            toks = [backbone.vision_head(backbone.vision_blocks(backbone.vision_embed(rgb[i:i + 256],
                                                                                  depth[i:i + 256])))[1]
                    for i in range(0, len(rgb), 256)]
            patches.append(torch.cat(toks))
            depth_t.append(patch_depth(backbone, depth))
    points, visible = torch.as_tensor(views.points), torch.as_tensor(views.visible)
    head = ObjectHead(backbone.vision_width, grid, cams)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        loss = 0.0
        for i, cam in enumerate(cams):
            target = keypoint_target(points[:, i], grid, sigma)
            ce = -(target * head.logits(patches[i], cam).log_softmax(1)).sum(1)
            loss = loss + (ce * visible[:, i]).sum() / visible[:, i].sum().clamp_min(1)
            loss = loss + F.mse_loss(head.depth(patches[i]).squeeze(-1), depth_t[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.requires_grad_(False)
    backbone.object_head = head
    heldout = torch.as_tensor([c in SPLITS["Lift"]["heldout"] for c in views.categories])
    out: dict = {}
    with torch.no_grad():
        for i, cam in enumerate(cams):
            err = (head.locate(patches[i], cam)[:, :2] - points[:, i]).norm(dim=1) * (grid - 1) / 2
            for split, mask in (("train", ~heldout), ("heldout", heldout)):
                m = mask & visible[:, i]
                out[f"{cam}_error_{split}"] = float(err[m].mean()) if m.any() else None
    return out
